// gelu (erf and tanh forms), silu, relu and swiglu: forward against tests/reference.h (the C
// library in double), gradients against finite differences (f64) on plain, odd-sized and
// non-contiguous inputs, the f32 (polynomial, vectorised) kernels against f64 over a wide input
// range, bias_gelu (the fused bias + GELU), the bf16 kernels (f32 inside, one rounding), and
// argument errors.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

#include <omp.h>

#include "core/autocast.h"
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

TEST_CASE("gelu f32 gradient keeps relative accuracy in the negative tail") {
  // gelu'(x) = Phi(x) + x phi(x). Both terms carry exp(-x^2 / 2), whose relative error is that of
  // its argument, x^2 / 2 times the rounding of x^2: about 3e-8 x^2 when x^2 is rounded once.
  // Measured against the two terms' magnitudes (gelu' itself crosses 0 near x = -0.75).
  const Tensor x32 = grid(14, 2801, DType::f32).slice(0, 0, 1401);  // [-14, 0]
  const Tensor l32 = leaf_from(x32), l64 = leaf_from(x32.to(DType::f64));
  sum(gelu(l32)).backward();
  sum(gelu(l64)).backward();
  const std::vector<double> g32 = vals(l32.grad()), g64 = vals(l64.grad()), xv = vals(x32);
  size_t bad = 0;
  for (size_t i = 0; i < xv.size() && bad < 5; ++i) {
    const double x = xv[i], cdf = 0.5 * std::erfc(-x / std::sqrt(2.0));
    const double terms = std::abs(cdf) + std::abs(x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI));
    if (terms < 1e-37) continue;  // f32 underflow
    if (std::abs(g32[i] - g64[i]) <= 1e-7 * (3 + x * x / 2) * terms) continue;
    ++bad;
    FAIL_CHECK("x = " << x << ": f32 " << g32[i] << " vs f64 " << g64[i]);
  }
  CHECK(bad == 0);
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

TEST_CASE("bias_gelu: gelu(x + bias) in one op, gradients (f64) and errors") {
  for (bool tanh_form : {false, true}) {
    CAPTURE(tanh_form);
    Fn f = [tanh_form](const std::vector<Tensor>& in) { return bias_gelu(in[0], in[1], tanh_form); };
    check_grad(f, {leaf64({3, 4}, 30), leaf64({4}, 31)});
    check_grad(f, {leaf64({2, 3, 5}, 32), leaf64({5}, 33)});                  // bias broadcast over two dims
    check_grad(f, {leaf64_transposed({4, 3}, 34), leaf64_strided({3}, 35)});  // non-contiguous
    check_grad(f, {leaf64({1, 1}, 36), leaf64({1}, 37)});
    check_grad(f, {leaf64({2, 3}, 38), randn({3}, 39, TensorOptions{DType::f64})});  // bias without grad
    check_grad(f, {randn({2, 3}, 40, TensorOptions{DType::f64}), leaf64({3}, 41)});  // x without grad

    // The fused op is the composition it replaces, bitwise in f32 (one addition, then the same GELU):
    // f32 training gives the same numbers as before the fusion.
    Tensor x = randn({37, 129}, 42), b = randn({129}, 43);
    std::vector<double> fused = vals(bias_gelu(x, b, tanh_form)), composed = vals(gelu(add(x, b), tanh_form));
    size_t bad = 0;
    for (size_t i = 0; i < fused.size(); ++i) bad += fused[i] != composed[i];
    CHECK(bad == 0);
  }
  CHECK_THROWS_WITH_AS(bias_gelu(randn({3, 5}, 1), randn({4}, 2)),
                       doctest::Contains("bias_gelu: bias must be [5] (x's last dim)"), Error);
  CHECK_THROWS_WITH_AS(bias_gelu(randn({3, 5}, 1), randn({3, 5}, 2)),
                       doctest::Contains("bias_gelu: bias must be [5]"), Error);
  CHECK_THROWS_WITH_AS(bias_gelu(randn({3, 5}, 1), randn({5}, 2, TensorOptions{DType::f64})),
                       doctest::Contains("bias_gelu: dtype mismatch"), Error);
}

TEST_CASE("bias_gelu's bias gradient is the column sum of its x gradient, on any thread count") {
  // The kernel sums dx's columns in the pass that writes dx (row chunks fixed by the shape): check it
  // against an f64 sum of the dx it wrote, for row counts below, at and above the chunk count (64),
  // an empty batch, a 3-D input, and each dtype; and bitwise between 1 and 2 threads.
  const int saved_threads = omp_get_max_threads();
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    // {301, 129} and {1000, 40} are above the size where the kernel starts a second thread, with
    // row counts that are not a multiple of the chunk count, so the 1- vs 2-thread check has teeth.
    for (const Shape& shape : {Shape{1, 7}, Shape{63, 33}, Shape{64, 16}, Shape{201, 129}, Shape{301, 129},
                               Shape{1000, 40}, Shape{3, 70, 20}, Shape{0, 5}}) {
      CAPTURE(dtype_name(dt));
      CAPTURE(shape.size());
      CAPTURE(shape[0]);
      const int64_t C = shape.back();
      std::vector<double> first;
      for (int threads : {1, 2}) {
        omp_set_num_threads(threads);
        Tensor x = leaf_from(randn(shape, 70, TensorOptions{DType::f32}).to(dt));
        Tensor b = leaf_from(randn({C}, 71, TensorOptions{DType::f32}).to(dt));
        Tensor y = bias_gelu(x, b);
        y.backward(randn(shape, 72, TensorOptions{DType::f32}).to(dt));
        REQUIRE(b.grad().defined());
        CHECK(b.grad().dtype() == dt);
        const std::vector<double> dx = vals(x.grad()), db = vals(b.grad());
        REQUIRE(db.size() == size_t(C));
        for (int64_t j = 0; j < C; ++j) {
          double want = 0, mag = 0;
          for (size_t i = size_t(j); i < dx.size(); i += size_t(C)) want += dx[i], mag += std::abs(dx[i]);
          // f32 and f64 partial sums round a little on the way; bf16 rounds the result once more.
          const double tol = dt == DType::f64 ? 1e-12 * mag : dt == DType::f32 ? 1e-5 * mag : 1e-5 * mag + std::abs(want) / 256;
          CHECK(std::abs(db[size_t(j)] - want) <= tol);
        }
        if (threads == 1) first = db;
        else CHECK(db == first);
      }
    }
  }
  omp_set_num_threads(saved_threads);
}

namespace {
// bf16 -> f32 is exact, so the f32 kernel on the widened input, rounded once, is what the bf16
// kernel must give. Both evaluate the same f32 expression; allow one bf16 ulp only where the two
// loops' f32 results straddle a rounding boundary (a few f32 ulp of contraction difference).
void check_bf16_matches_rounded_f32(const Tensor& got_bf16, const Tensor& f32_result, const std::string& what) {
  INFO(what);
  REQUIRE(got_bf16.dtype() == DType::bf16);
  std::vector<double> got = vals(got_bf16), want = vals(f32_result.to(DType::bf16));
  size_t differ = 0, far = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i]))) continue;
    ++differ;
    far += std::abs(got[i] - want[i]) > std::abs(want[i]) / 128;
  }
  CHECK(far == 0);
  CHECK(differ <= got.size() / 100);
}
}  // namespace

TEST_CASE("bf16 activations compute in f32 and round once, forward and backward, without widened copies") {
  const Tensor x32 = mul(randn({33, 301}, 50), 3.0).to(DType::bf16).to(DType::f32);  // bf16-representable
  const Tensor b32 = randn({301}, 51).to(DType::bf16).to(DType::f32);
  const Tensor dy32 = randn({33, 301}, 52).to(DType::bf16).to(DType::f32);
  const Tensor up32 = randn({33, 301}, 53).to(DType::bf16).to(DType::f32), up16 = up32.to(DType::bf16);
  struct Case {
    std::string name;
    std::function<Tensor(const Tensor&, const Tensor&)> op;  // (x, bias)
  };
  const std::vector<Case> cases = {
      {"gelu", [](const Tensor& x, const Tensor&) { return gelu(x); }},
      {"gelu tanh", [](const Tensor& x, const Tensor&) { return gelu(x, true); }},
      {"silu", [](const Tensor& x, const Tensor&) { return silu(x); }},
      {"relu", [](const Tensor& x, const Tensor&) { return relu(x); }},
      {"bias_gelu", [](const Tensor& x, const Tensor& b) { return bias_gelu(x, b); }},
      {"swiglu", [&](const Tensor& x, const Tensor&) { return swiglu(x, x.dtype() == DType::bf16 ? up16 : up32); }},
  };
  for (const Case& c : cases) {
    Tensor xl = leaf_from(x32.to(DType::bf16)), bl = leaf_from(b32.to(DType::bf16));
    Tensor xf = leaf_from(x32), bf = leaf_from(b32);
    Tensor y = c.op(xl, bl), yf = c.op(xf, bf);
    CHECK(y.dtype() == DType::bf16);
    check_bf16_matches_rounded_f32(y, yf, c.name + " forward");
    y.backward(dy32.to(DType::bf16));
    yf.backward(dy32);
    REQUIRE(xl.grad().defined());
    CHECK(xl.grad().dtype() == DType::bf16);
    check_bf16_matches_rounded_f32(xl.grad(), xf.grad(), c.name + " gradient of x");
    if (c.name == "bias_gelu") {
      // The bias gradient sums 33 rounded rows in f32: within a few bf16 ulp of the f32 sum.
      std::vector<double> gb = vals(bl.grad()), wb = vals(bf.grad());
      double scale = 0;
      for (double v : wb) scale = std::max(scale, std::abs(v));
      for (size_t i = 0; i < gb.size(); ++i) CHECK(std::abs(gb[i] - wb[i]) <= 4.0 / 256 * scale);
    }
  }
}

TEST_CASE("bias_gelu under autocast: a bf16 activation with an f32 parameter bias stays bf16") {
  Tensor x = leaf_from(randn({4, 8}, 60).to(DType::bf16)), b = leaf_from(randn({8}, 61));
  Tensor y;
  {
    AutocastGuard guard;
    y = bias_gelu(x, b);
  }
  CHECK(y.dtype() == DType::bf16);
  sum(y.to(DType::f32)).backward();
  REQUIRE(b.grad().defined());
  CHECK(b.grad().dtype() == DType::f32);  // back through the cached cast, in the parameter's dtype
  CHECK(x.grad().dtype() == DType::bf16);
  // Same values as the f32 computation on the bias rounded to bf16 (what autocast hands the op).
  Tensor want = gelu(add(x.detach().to(DType::f32), b.detach().to(DType::bf16).to(DType::f32)));
  check_bf16_matches_rounded_f32(y.detach(), want, "autocast bias_gelu");
}
