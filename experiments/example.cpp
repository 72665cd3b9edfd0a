// `mixgrad example`: the smallest end-to-end use of the library. Fits a two-layer tanh MLP to
// y = sin(3x) on [-1, 1] by full-batch gradient descent and prints the falling loss.
#include <cmath>
#include <cstdio>

#include "experiments/args.h"
#include "experiments/commands.h"
#include "ops/ops.h"

namespace mg {

int run_example(const std::vector<std::string>& args) {
  Args a("example", args, {"steps"}, {});
  for (const auto& p : a.positionals()) throw Error("example: unknown argument '" + p + "' (expected --steps N)");
  int steps = 500;
  a.read("steps", steps);
  // Upper bound: a run that prints ten lines should not take hours by a slip of the keyboard.
  MG_CHECK(steps >= 1 && steps <= 1000000, "example: --steps must be in [1, 1000000], got ", steps);
  Generator gen(0);
  const int64_t n = 256, hidden = 32;
  Tensor x = arange(-1.0, 1.0, 2.0 / double(n)).reshape({n, 1});
  std::vector<float> yv;
  for (float v : x.to_vector<float>()) yv.push_back(std::sin(3.0f * v));
  Tensor y = from_vector(yv, {n, 1});
  auto param = [&](const Shape& s, double scale) {
    Tensor p = mul(randn(s, gen), scale).detach();
    p.set_requires_grad(true);
    return p;
  };
  Tensor w1 = param({1, hidden}, 1.0), b1 = param({hidden}, 0.1);
  Tensor w2 = param({hidden, 1}, 1.0 / std::sqrt(double(hidden))), b2 = param({1}, 0.1);
  const double lr = 0.2;
  std::printf("fitting y = sin(3x) with a 1-%lld-1 tanh MLP, full-batch gradient descent, lr %.2f\n",
              (long long)hidden, lr);
  double first = 0, last = 0;
  for (int step = 0; step <= steps; ++step) {
    Tensor h = tanh(add(matmul(x, w1), b1));
    Tensor pred = add(matmul(h, w2), b2);
    Tensor loss = mean(square(sub(pred, y)));
    loss.backward();
    last = loss.item();
    if (step == 0) first = last;
    if (step % (steps / 10 > 0 ? steps / 10 : 1) == 0) std::printf("step %4d  loss %.6f\n", step, last);
    NoGradGuard no_grad;
    for (Tensor* p : {&w1, &b1, &w2, &b2}) {
      assign_(*p, sub(*p, mul(p->grad(), lr)));
      p->zero_grad();
    }
  }
  std::printf("loss fell from %.6f to %.6f (%.1fx)\n", first, last, first / last);
  return last < first ? 0 : 1;
}

}  // namespace mg
