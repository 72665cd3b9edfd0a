// gelu (erf and tanh forms), silu, relu and swiglu: forward against tests/reference.h (the C
// library in double), gradients against finite differences (f64) on plain, odd-sized and
// non-contiguous inputs, the f32 (polynomial, vectorised) kernels against f64 over a wide input
// range, and argument errors.
#include <functional>
#include <string>

#include "ops/activation.h"
#include "tests/reference.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;


struct Act {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<double(double)> ref;
};
std::vector<Act> activations() {
  return {
      {"gelu", [](const Tensor& x) { return gelu(x); }, ref::gelu},
      {"gelu_tanh", [](const Tensor& x) { return gelu(x, true); }, ref::gelu_tanh},
      {"silu", [](const Tensor& x) { return silu(x); }, ref::silu},
      {"relu", [](const Tensor& x) { return relu(x); }, ref::relu},
  };
}

// -range..range in `n` steps, plus the exact points 0 and +-1.
Tensor grid(double range, int64_t n, DType dt) {
  std::vector<double> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(-range + 2 * range * double(i) / double(n - 1));
  v.insert(v.end(), {0.0, 1.0, -1.0});
  return from_vector(v, Shape{int64_t(v.size())}, TensorOptions{dt});
}

Tensor leaf_from(const Tensor& t) {
  Tensor l = t.detach();
  l.set_requires_grad(true);
  return l;
}

// An f32 result can be no more accurate than the function's conditioning |x f'(x) / f(x)| times
// the rounding of its input; allow that plus a few ulp of evaluation error.
void check_f32_forward(const Act& a, const Tensor& x32) {
  std::vector<double> xv = vals(x32), y = vals(a.op(x32));
  size_t bad = 0;
  for (size_t i = 0; i < xv.size() && bad < 5; ++i) {
    const double x = xv[i], ref = a.ref(x);
    bool ok;
    if (ref == 0) {
      ok = y[i] == 0;
    } else {
      const double h = 1e-7, cond = std::abs((a.ref(x * (1 + h)) - a.ref(x * (1 - h))) / (2 * h * ref));
      ok = std::abs(y[i] - ref) <= 3e-7 * (2 + cond) * std::abs(ref) || std::abs(ref) < 1e-37;
    }
    if (!ok) {
      ++bad;
      FAIL_CHECK(std::string(a.name) << "(" << x << ") = " << y[i] << ", reference " << ref);
    }
  }
  CHECK(bad == 0);
}
}  // namespace

TEST_CASE("activations: forward matches the reference in f64 and f32") {
  for (auto& a : activations()) {
    SUBCASE(a.name) {
      // f64: the C library, to rounding.
      Tensor x64 = grid(30, 2001, DType::f64);
      std::vector<double> xv = vals(x64), y64 = vals(a.op(x64));
      size_t bad = 0;
      for (size_t i = 0; i < xv.size() && bad < 5; ++i) {
        if (std::abs(y64[i] - a.ref(xv[i])) <= 1e-14 * (1 + std::abs(a.ref(xv[i])))) continue;
        ++bad;
        FAIL_CHECK(std::string(a.name) << "(" << xv[i] << ") = " << y64[i] << ", reference " << a.ref(xv[i]));
      }
      CHECK(bad == 0);
      // f32: polynomial exp/erfc, as accurate as the conditioning at the f32 input allows.
      check_f32_forward(a, grid(30, 2001, DType::f32));
    }
  }
}

TEST_CASE("gelu f32 keeps relative accuracy in the negative tail (no cancellation)") {
  // gelu(x) = x Phi(x) with Phi(-12) ~ 1.8e-33: computed as 0.5 erfc, not 1 + erf, so the relative
  // error stays at the conditioning bound (about x^2 f32 ulps) instead of growing to 100%.
  check_f32_forward(activations()[0], grid(12, 1001, DType::f32).slice(0, 0, 501));  // [-12, 0]
}

TEST_CASE("activations: large inputs and many elements (threads) stay finite and accurate") {
  for (auto& a : activations()) {
    CAPTURE(std::string(a.name));
    Tensor x = from_vector<float>({-100.f, -88.f, -20.f, 20.f, 88.f, 100.f, 1e30f, -1e30f}, Shape{8});
    std::vector<double> y = vals(a.op(x));
    for (double v : y) CHECK(std::isfinite(v));
    check_f32_forward(a, x);
    Tensor xl = leaf_from(x);
    sum(a.op(xl)).backward();
    for (double g : vals(xl.grad())) CHECK(std::isfinite(g));

    check_f32_forward(a, randn({100003}, 7));  // odd size, split across threads
  }
}

TEST_CASE("activations: gradients match finite differences (f64)") {
  for (auto& a : activations()) {
    SUBCASE(a.name) {
      Fn f = [&](const std::vector<Tensor>& in) { return a.op(in[0]); };
      check_grad(f, {leaf64({3, 4}, 1)});
      check_grad(f, {leaf64({1, 1}, 2)});
      check_grad(f, {leaf64({1, 7}, 3)});
      check_grad(f, {leaf_from(mul(leaf64({2, 9}, 4), 3.0))});  // wider range
      check_grad_non_contiguous(f, {4, 3}, {3, 5}, 5);
    }
  }
}

TEST_CASE("activations: f32 gradients agree with f64 over a wide range") {
  for (auto& a : activations()) {
    SUBCASE(a.name) {
      Tensor x32 = grid(20, 40001, DType::f32);
      Tensor l32 = leaf_from(x32), l64 = leaf_from(x32.to(DType::f64));  // the same inputs
      sum(a.op(l64)).backward();
      sum(a.op(l32)).backward();
      std::vector<double> g64 = vals(l64.grad()), g32 = vals(l32.grad()), xv = vals(x32);
      size_t bad = 0;
      for (size_t i = 0; i < g64.size() && bad < 5; ++i) {
        const bool ok = std::abs(g32[i] - g64[i]) <= 1e-6 * (1 + std::abs(g64[i]));
        if (!ok) {
          ++bad;
          FAIL_CHECK("x = " << xv[i] << ": f32 " << g32[i] << " vs f64 " << g64[i]);
        }
      }
      CHECK(bad == 0);
    }
  }
}

TEST_CASE("swiglu: forward, gradients and errors") {
  Tensor g = randn({3, 5}, 10), u = randn({3, 5}, 11);
  std::vector<double> gv = vals(g), uv = vals(u), y = vals(swiglu(g, u)), want(gv.size());
  ref::swiglu_forward(want.data(), gv.data(), uv.data(), int64_t(gv.size()));
  for (size_t i = 0; i < y.size(); ++i) CHECK(y[i] == doctest::Approx(want[i]).epsilon(1e-6));

  Fn f = [](const std::vector<Tensor>& in) { return swiglu(in[0], in[1]); };
  check_grad(f, {leaf64({3, 4}, 12), leaf64({3, 4}, 13)});
  check_grad(f, {leaf64({1, 1}, 14), leaf64({1, 1}, 15)});
  check_grad(f, {leaf64({1, 7}, 16), leaf64({1, 7}, 17)});
  check_grad(f, {leaf64_transposed({4, 3}, 18), leaf64_strided({4, 3}, 19)});
  // only one input requires grad
  check_grad(f, {leaf64({2, 3}, 20), randn({2, 3}, 21, TensorOptions{DType::f64})});
  check_grad(f, {randn({2, 3}, 22, TensorOptions{DType::f64}), leaf64({2, 3}, 23)});

  // f32 kernels against f64
  Tensor g64 = randn({70000}, 24, TensorOptions{DType::f64}), u64 = randn({70000}, 25, TensorOptions{DType::f64});
  Tensor lg64 = leaf_from(g64), lu64 = leaf_from(u64), lg32 = leaf_from(g64.to(DType::f32)),
         lu32 = leaf_from(u64.to(DType::f32));
  sum(swiglu(lg64, lu64)).backward();
  sum(swiglu(lg32, lu32)).backward();
  std::vector<double> a = vals(lg32.grad()), b = vals(lg64.grad()), c = vals(lu32.grad()), d = vals(lu64.grad());
  size_t bad = 0;
  for (size_t i = 0; i < a.size(); ++i)
    bad += std::abs(a[i] - b[i]) > 2e-6 * (1 + std::abs(b[i])) || std::abs(c[i] - d[i]) > 2e-6 * (1 + std::abs(d[i]));
  CHECK(bad == 0);

  CHECK_THROWS_WITH_AS(swiglu(randn({3, 5}, 1), randn({3, 4}, 2)),
                       doctest::Contains("swiglu: gate and up must have the same shape, got gate f32[3, 5] on cpu "
                                         "and up f32[3, 4] on cpu"),
                       Error);
  CHECK_THROWS_WITH_AS(swiglu(randn({3}, 1), randn({3}, 2, TensorOptions{DType::f64})),
                       doctest::Contains("swiglu: dtype mismatch"), Error);
  CHECK_THROWS_WITH_AS(gelu(zeros({2}, TensorOptions{DType::i32})), doctest::Contains("gelu"), Error);
}
