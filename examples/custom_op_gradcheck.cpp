// Example 2: write your own differentiable op and check its gradient against finite differences.
//
//   example_custom_op_gradcheck
//
// The op is a swish with a learnable slope, y = x * sigmoid(beta * x), where beta broadcasts
// against x (one slope per feature, say). Its forward runs existing ops with recording off; its
// backward is a closure we hand to autograd's record(). gradcheck (f64) then compares that
// backward with central differences on plain, broadcast and non-contiguous inputs, and a
// deliberately wrong backward shows what a failure looks like.
// Exits non-zero if any verdict is not the expected one, so ctest can run it as a test.
#include <cstdio>
#include <string>
#include <vector>

#include "ops/ops.h"  // Tensor, ops, NoGradGuard, record(), needs_grad(), gradcheck()

using namespace mg;

// Undo broadcasting: sum g over the dims where an input of `shape` was stretched to g's shape
// (leading dims it lacks, and its dims of size 1). The gradient of a broadcast input is this sum.
Tensor sum_to_shape(const Tensor& g, const Shape& shape) {
  const int64_t lead = g.dim() - int64_t(shape.size());
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < g.dim(); ++d)
    if (d < lead || (shape[size_t(d - lead)] == 1 && g.size(d) != 1)) dims.push_back(d);
  return dims.empty() ? g : sum(g, dims, /*keepdim=*/true).reshape(shape);
}

Tensor sigmoid(const Tensor& z) { return 0.5 * (1.0 + tanh(0.5 * z)); }

// y = x * sigmoid(beta * x); dy/dx = s + beta x s (1 - s), dy/dbeta = x^2 s (1 - s), s = sigmoid(beta x).
// `buggy` drops the second term of dy/dx, the kind of slip gradcheck exists to catch.
Tensor learnable_swish(const Tensor& x, const Tensor& beta, bool buggy = false) {
  Tensor s, y;
  {
    NoGradGuard no_grad;  // the forward records nothing: the backward below replaces its graph
    s = sigmoid(beta * x);
    y = x * s;
  }
  // The closure keeps what the backward reads. Detached handles share the inputs' memory
  // without holding the graph that made them. needs_grad() says which gradients are wanted.
  const bool want_x = needs_grad(x), want_beta = needs_grad(beta);
  Tensor xs = x.detach(), bs = beta.detach();
  // record() must run with grad mode on (outside the guard), or it attaches nothing.
  auto backward = [xs, bs, s, want_x, want_beta, buggy](const Tensor& g) -> std::vector<Tensor> {
    // autograd runs this with recording off; g is dL/dy, shaped like y.
    Tensor ds = s * (1.0 - s);
    Tensor dx = buggy ? g * s : g * (s + bs * xs * ds);
    // One gradient per input, in input order, each shaped like its input (sum_to_shape undoes
    // any broadcast), or an undefined Tensor() for an input that needs none.
    return {want_x ? sum_to_shape(dx, xs.shape()) : Tensor(),
            want_beta ? sum_to_shape(g * xs * xs * ds, bs.shape()) : Tensor()};
  };
  return record("learnable_swish", y, {x, beta}, backward);
}

int main() try {
  const TensorOptions f64 = TensorOptions{}.with_dtype(DType::f64);
  int failures = 0;
  auto check = [&](const char* what, Tensor x, Tensor beta, bool buggy, bool expect_ok) {
    x.set_requires_grad(true);
    beta.set_requires_grad(true);
    GradcheckResult r = gradcheck(
        [buggy](const std::vector<Tensor>& in) { return learnable_swish(in[0], in[1], buggy); }, {x, beta});
    const bool as_expected = r.ok == expect_ok;
    failures += as_expected ? 0 : 1;
    std::printf("%-38s x %-8s beta %-8s %s%s\n", what, shape_str(x.shape()).c_str(),
                shape_str(beta.shape()).c_str(), r.ok ? "PASS" : "FAIL", as_expected ? "" : "  <-- unexpected");
    if (!r.ok) std::printf("  %s\n", r.message.c_str());  // names the worst element and both values
  };

  Generator gen(7);
  // Plain: same shapes, contiguous.
  check("plain", randn({3, 4}, gen, f64), randn({3, 4}, gen, f64), false, true);
  // Broadcast: one slope per column ([4] against [3, 4]) and one per row ([3, 1]).
  check("broadcast beta [4]", randn({3, 4}, gen, f64), randn({4}, gen, f64), false, true);
  check("broadcast beta [3, 1]", randn({3, 4}, gen, f64), randn({3, 1}, gen, f64), false, true);
  // Non-contiguous: x a transposed view, beta every second element of a longer vector.
  // gradcheck perturbs such inputs through their strides, so the views themselves are checked.
  Tensor xt = randn({4, 3}, gen, f64).t();                 // [3, 4], strides [1, 3]
  Tensor bstep = randn({8}, gen, f64).slice(0, 0, 8, 2);   // [4], stride 2
  std::printf("x contiguous: %s, beta contiguous: %s\n", xt.is_contiguous() ? "yes" : "no",
              bstep.is_contiguous() ? "yes" : "no");
  check("non-contiguous x and broadcast beta", xt, bstep, false, true);
  // x broadcast against a bigger beta: x's gradient must be summed back too.
  check("broadcast x [4] against beta [3, 4]", randn({4}, gen, f64), randn({3, 4}, gen, f64), false, true);
  // A wrong backward must fail, with the worst element named.
  check("buggy backward (must FAIL)", randn({3, 4}, gen, f64), randn({4}, gen, f64), true, false);

  // The op also trains like any other: one gradient step on beta lowers a loss built from it.
  Tensor x = randn({16, 4}, gen), beta = zeros({4}).set_requires_grad(true);
  Tensor target = x * sigmoid(2.0 * x);  // the swish with beta = 2 everywhere
  Tensor loss = mean(square(learnable_swish(x, beta) - target));
  loss.backward();
  Tensor after = mean(square(learnable_swish(x, beta.detach() - 5.0 * beta.grad()) - target));
  std::printf("one gradient step on beta: loss %.5f -> %.5f\n", loss.item(), after.item());
  failures += after.item() < loss.item() ? 0 : 1;

  if (failures == 0) std::printf("all verdicts as expected\n");
  else std::printf("%d unexpected verdicts\n", failures);
  return failures == 0 ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "example_custom_op_gradcheck: error: %s\n", e.what());
  return 2;
}
