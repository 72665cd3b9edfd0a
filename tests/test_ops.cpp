// ops/: every op's forward against a plain reference, and its gradient against finite
// differences (f64) on plain, broadcast and non-contiguous inputs.
#include <omp.h>

#include <cmath>
#include <functional>

#include "core/autocast.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;


// Positive inputs for log/sqrt/rsqrt/pow/div denominators.
Tensor positive(const Tensor& t) {
  Tensor p = add(abs(t.detach()), 0.5);
  Tensor leaf = p.detach();
  leaf.set_requires_grad(true);
  return leaf;
}
Tensor positive_strided(const Shape& s, uint64_t seed) {
  Shape w = s;
  w.back() *= 2;
  Tensor base = add(abs(randn(w, seed, TensorOptions{DType::f64})), 0.5);
  Tensor v = base.slice(-1, 0, w.back(), 2).detach();
  v.set_requires_grad(true);
  return v;
}
}  // namespace

TEST_CASE("unary ops: forward matches std:: and gradients match finite differences") {
  struct U {
    const char* name;
    std::function<Tensor(const Tensor&)> op;
    std::function<double(double)> ref;
    bool needs_positive;
  };
  std::vector<U> ops = {
      {"neg", [](const Tensor& x) { return neg(x); }, [](double v) { return -v; }, false},
      {"exp", [](const Tensor& x) { return exp(x); }, [](double v) { return std::exp(v); }, false},
      {"log", [](const Tensor& x) { return log(x); }, [](double v) { return std::log(v); }, true},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double v) { return std::sqrt(v); }, true},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double v) { return 1 / std::sqrt(v); }, true},
      {"pow3", [](const Tensor& x) { return pow(x, 3.0); }, [](double v) { return v * v * v; }, false},
      {"pow-1.5", [](const Tensor& x) { return pow(x, -1.5); }, [](double v) { return std::pow(v, -1.5); }, true},
      {"abs", [](const Tensor& x) { return abs(x); }, [](double v) { return std::abs(v); }, false},
      {"tanh", [](const Tensor& x) { return tanh(x); }, [](double v) { return std::tanh(v); }, false},
      {"add_scalar", [](const Tensor& x) { return x + 2.5; }, [](double v) { return v + 2.5; }, false},
      {"sub_scalar", [](const Tensor& x) { return x - 2.5; }, [](double v) { return v - 2.5; }, false},
      {"rsub_scalar", [](const Tensor& x) { return 2.5 - x; }, [](double v) { return 2.5 - v; }, false},
      {"mul_scalar", [](const Tensor& x) { return x * -1.5; }, [](double v) { return v * -1.5; }, false},
      {"div_scalar", [](const Tensor& x) { return x / 4.0; }, [](double v) { return v / 4.0; }, false},
      {"rdiv_scalar", [](const Tensor& x) { return 3.0 / x; }, [](double v) { return 3.0 / v; }, true},
  };
  for (auto& u : ops) {
    SUBCASE(u.name) {
      // forward, f32 and f64
      for (DType dt : {DType::f32, DType::f64}) {
        Tensor x = randn({3, 5}, 42, TensorOptions{dt});
        if (u.needs_positive) x = add(abs(x), 0.5);
        std::vector<double> xv = vals(x), yv = vals(u.op(x));
        for (size_t i = 0; i < xv.size(); ++i)
          CHECK(yv[i] == doctest::Approx(u.ref(xv[i])).epsilon(dt == DType::f32 ? 1e-5 : 1e-12));
      }
      Fn f = [&](const std::vector<Tensor>& in) { return u.op(in[0]); };
      Tensor plain = u.needs_positive ? positive(leaf64({3, 4}, 1)) : leaf64({3, 4}, 1);
      Tensor strided = u.needs_positive ? positive_strided({3, 4}, 2) : leaf64_strided({3, 4}, 2);
      CHECK_FALSE(strided.is_contiguous());
      check_grad(f, {plain});
      check_grad(f, {strided});
      if (!u.needs_positive) check_grad(f, {leaf64_transposed({4, 3}, 3)});
    }
  }
}

TEST_CASE("binary ops with broadcasting: forward and gradients") {
  struct B {
    const char* name;
    std::function<Tensor(const Tensor&, const Tensor&)> op;
    std::function<double(double, double)> ref;
  };
  std::vector<B> ops = {
      {"add", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double x, double y) { return x + y; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double x, double y) { return x - y; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double x, double y) { return x * y; }},
      {"div", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double x, double y) { return x / y; }},
  };
  for (auto& b : ops) {
    SUBCASE(b.name) {
      // forward: [3,1] op [1,4] -> [3,4]; out[i][j] = ref(a[i], b[j])
      Tensor x = randn({3, 1}, 5), y = add(abs(randn({1, 4}, 6)), 0.5);
      Tensor z = b.op(x, y);
      REQUIRE(z.shape() == Shape{3, 4});
      std::vector<double> xv = vals(x), yv = vals(y), zv = vals(z);
      for (size_t i = 0; i < 3; ++i)
        for (size_t j = 0; j < 4; ++j) CHECK(zv[i * 4 + j] == doctest::Approx(b.ref(xv[i], yv[j])).epsilon(1e-6));
      Fn f = [&](const std::vector<Tensor>& in) { return b.op(in[0], in[1]); };
      // same shape
      check_grad(f, {leaf64({2, 3}, 1), positive(leaf64({2, 3}, 2))});
      // broadcast both ways and across ranks
      check_grad(f, {leaf64({3, 1}, 3), positive(leaf64({1, 4}, 4))});
      check_grad(f, {leaf64({2, 3, 4}, 5), positive(leaf64({4}, 6))});
      check_grad(f, {leaf64({4}, 7), positive(leaf64({2, 3, 4}, 8))});
      // non-contiguous operands, one broadcast
      check_grad(f, {leaf64_transposed({3, 4}, 9), positive_strided({1, 4}, 10)});
      // 0-dim scalar operand
      check_grad(f, {leaf64({2, 2}, 11), positive(leaf64({}, 12))});
    }
  }
}

TEST_CASE("reductions: sum, mean, max, var over dims with keepdim") {
  Tensor x = arange(0, 24).reshape({2, 3, 4});
  check_close(sum(x), {276});
  check_close(sum(x, {0}), {12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34});
  check_close(sum(x, {1, 2}), {66, 210});
  CHECK(sum(x, {1}, true).shape() == Shape{2, 1, 4});
  CHECK(sum(x, {-1}).shape() == Shape{2, 3});
  check_close(mean(x, {2}), {1.5, 5.5, 9.5, 13.5, 17.5, 21.5});
  check_close(max(x, {1}), {8, 9, 10, 11, 20, 21, 22, 23});
  check_close(max(x.transpose(0, 2), {2}), {12, 16, 20, 13, 17, 21, 14, 18, 22, 15, 19, 23});
  check_close(var(x, {2}), std::vector<double>(6, 5.0 / 3.0));  // var of 4 consecutive ints, unbiased
  check_close(var(x, {2}, 0), std::vector<double>(6, 1.25));
  // sum of 10^6 f32 ones is exact (accumulation does not drift)
  CHECK(sum(ones({1000000})).item() == 1000000.0);
  // The threaded paths: one long row (a partial per thread, added in order) and many rows, on one
  // and two threads, against f64 sums; max finds a NaN anywhere in a long row.
  const int saved_threads = omp_get_max_threads();
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    CAPTURE(threads);
    Tensor big = randn({100003}, 7);
    const std::vector<double> bv = vals(big);
    double ref = 0, mag = 0;
    for (double v : bv) ref += v, mag += std::abs(v);
    CHECK(std::abs(sum(big).item() - ref) <= 1e-6 * mag);
    Tensor rows = randn({300, 1001}, 8);
    const std::vector<double> rv = vals(rows), rs = vals(sum(rows, {1})), rm = vals(max(rows, {1}));
    int bad = 0;
    for (int64_t r = 0; r < 300; ++r) {
      double s = 0, a = 0, m = -INFINITY;
      for (int64_t i = 0; i < 1001; ++i) {
        const double v = rv[size_t(r * 1001 + i)];
        s += v, a += std::abs(v), m = std::max(m, v);
      }
      bad += !(std::abs(rs[size_t(r)] - s) <= 1e-6 * a) + (rm[size_t(r)] != m);
    }
    CHECK(bad == 0);
    std::vector<float> with_nan(70000, 1.0f);
    with_nan[65432] = NAN;
    CHECK(std::isnan(max(from_vector(with_nan)).item()));
  }
  omp_set_num_threads(saved_threads);

  std::vector<std::pair<std::vector<int64_t>, bool>> cases = {{{}, false}, {{0}, false}, {{1}, true},
                                                              {{0, 2}, false}, {{-1}, true}};
  for (auto& [dims, keep] : cases) {
    auto d = dims;
    bool k = keep;
    check_grad([d, k](const std::vector<Tensor>& in) { return sum(in[0], d, k); }, {leaf64_transposed({2, 3, 4}, 1)});
    check_grad([d, k](const std::vector<Tensor>& in) { return mean(in[0], d, k); }, {leaf64_strided({2, 3, 4}, 2)});
    check_grad([d, k](const std::vector<Tensor>& in) { return max(in[0], d, k); }, {leaf64({2, 3, 4}, 3)});
    check_grad([d, k](const std::vector<Tensor>& in) { return var(in[0], d, 1, k); }, {leaf64_transposed({2, 3, 4}, 4)});
  }
  // ties share the gradient equally
  Tensor t = from_vector(std::vector<double>{1, 3, 3, 2}, TensorOptions{DType::f64}.with_requires_grad(true));
  max(t).backward();
  check_close(t.grad(), {0, 0.5, 0.5, 0});
}

TEST_CASE("matmul: 2-D, batched, broadcast batch dims, vectors, transposed operands") {
  // forward against a naive product
  auto naive = [](const std::vector<double>& a, const std::vector<double>& b, int M, int K, int N) {
    std::vector<double> c(size_t(M * N), 0.0);
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j)
        for (int k = 0; k < K; ++k) c[size_t(i * N + j)] += a[size_t(i * K + k)] * b[size_t(k * N + j)];
    return c;
  };
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor a = randn({5, 7}, 1, TensorOptions{dt}), b = randn({7, 3}, 2, TensorOptions{dt});
    check_close(matmul(a, b), naive(vals(a), vals(b), 5, 7, 3), dt == DType::f32 ? 1e-5 : 1e-12);
    // transposed views give the same result as their contiguous copies
    Tensor at = randn({7, 5}, 3, TensorOptions{dt}).t();
    check_close(matmul(at, b), naive(vals(at.contiguous()), vals(b), 5, 7, 3), dt == DType::f32 ? 1e-5 : 1e-12);
  }
  Tensor A = randn({2, 3, 4}, 4, TensorOptions{DType::f64}), B = randn({4, 5}, 5, TensorOptions{DType::f64});
  Tensor C = matmul(A, B);
  REQUIRE(C.shape() == Shape{2, 3, 5});
  check_close(C.select(0, 1), naive(vals(A.select(0, 1)), vals(B), 3, 4, 5), 1e-12);
  CHECK(matmul(randn({4}, 1), randn({4, 3}, 2)).shape() == Shape{3});
  CHECK(matmul(randn({2, 4}, 1), randn({4}, 2)).shape() == Shape{2});
  CHECK(matmul(randn({4}, 1), randn({4}, 2)).dim() == 0);
  CHECK(matmul(randn({3, 1, 2, 4}, 1), randn({5, 4, 6}, 2)).shape() == Shape{3, 5, 2, 6});

  Fn f = [](const std::vector<Tensor>& in) { return matmul(in[0], in[1]); };
  check_grad(f, {leaf64({3, 4}, 1), leaf64({4, 2}, 2)});
  check_grad(f, {leaf64_transposed({3, 4}, 3), leaf64_transposed({4, 2}, 4)});
  check_grad(f, {leaf64_strided({3, 4}, 5), leaf64({4, 2}, 6)});
  check_grad(f, {leaf64({2, 3, 4}, 7), leaf64({4, 5}, 8)});          // broadcast B over the batch
  check_grad(f, {leaf64({3, 4}, 9), leaf64({2, 4, 5}, 10)});         // broadcast A over the batch
  check_grad(f, {leaf64({2, 1, 3, 4}, 11), leaf64({3, 4, 2}, 12)});  // both broadcast
  check_grad(f, {leaf64({4}, 13), leaf64({4, 3}, 14)});               // vector x matrix
  check_grad(f, {leaf64({2, 4}, 15), leaf64({4}, 16)});               // matrix x vector
  check_grad(f, {leaf64({1, 1}, 17), leaf64({1, 1}, 18)});            // 1x1
}

TEST_CASE("cat, stack, index_select") {
  Tensor a = arange(0, 6).reshape({2, 3}), b = arange(6, 10).reshape({2, 2});
  check_close(cat({a, b}, 1), {0, 1, 2, 6, 7, 3, 4, 5, 8, 9});
  check_close(cat({a, a}, 0).select(0, 3), {3, 4, 5});
  Tensor s = stack({a, a * 2.0}, 1);
  CHECK(s.shape() == Shape{2, 2, 3});
  check_close(s.select(0, 1), {3, 4, 5, 6, 8, 10});
  Tensor idx = from_vector(std::vector<int32_t>{2, 0, 2});
  check_close(index_select(a, 1, idx), {2, 0, 2, 5, 3, 5});
  check_close(index_select(a, 0, from_vector(std::vector<int32_t>{1})), {3, 4, 5});

  check_grad([](const std::vector<Tensor>& in) { return cat({in[0], in[1], in[0]}, 1); },
             {leaf64_transposed({2, 3}, 1), leaf64({2, 2}, 2)});
  check_grad([](const std::vector<Tensor>& in) { return cat({in[0], in[1]}, 0); }, {leaf64({1, 3}, 3), leaf64_strided({2, 3}, 4)});
  check_grad([](const std::vector<Tensor>& in) { return stack({in[0], in[1]}, 0); }, {leaf64({2, 3}, 5), leaf64_transposed({2, 3}, 6)});
  check_grad([](const std::vector<Tensor>& in) { return stack({in[0], in[1]}, 2); }, {leaf64({2, 3}, 7), leaf64({2, 3}, 8)});
  // repeated indices accumulate in the backward
  Tensor rep = from_vector(std::vector<int32_t>{1, 1, 0, 3, 1});
  check_grad([rep](const std::vector<Tensor>& in) { return index_select(in[0], 0, rep); }, {leaf64({4, 3}, 9)});
  check_grad([rep](const std::vector<Tensor>& in) { return index_select(in[0], 1, rep); }, {leaf64_transposed({2, 4}, 10)});
  Tensor w = leaf64({4, 2}, 11);
  sum(index_select(w, 0, rep)).backward();
  check_close(w.grad(), {1, 1, 3, 3, 0, 0, 1, 1});
}

TEST_CASE("views and conversions are differentiable") {
  check_grad([](const std::vector<Tensor>& in) { return in[0].reshape({4, 3}) * 2.0; }, {leaf64({2, 6}, 1)});
  check_grad([](const std::vector<Tensor>& in) { return in[0].reshape({-1}); }, {leaf64_transposed({3, 4}, 2)});
  check_grad([](const std::vector<Tensor>& in) { return in[0].permute({2, 0, 1}) * 1.5; }, {leaf64({2, 3, 4}, 3)});
  check_grad([](const std::vector<Tensor>& in) { return in[0].slice(1, 1, 4, 2); }, {leaf64({2, 5}, 4)});
  check_grad([](const std::vector<Tensor>& in) { return in[0].narrow(0, 1, 2); }, {leaf64_transposed({3, 3}, 5)});
  check_grad([](const std::vector<Tensor>& in) { return in[0].select(1, -1); }, {leaf64({3, 3}, 6)});
  check_grad([](const std::vector<Tensor>& in) { return in[0].expand({3, 2, 4}) * in[1]; },
             {leaf64({2, 1}, 7), leaf64({3, 2, 4}, 8)});
  check_grad([](const std::vector<Tensor>& in) { return in[0].unsqueeze(1).squeeze(1); }, {leaf64({2, 3}, 9)});
  check_grad([](const std::vector<Tensor>& in) { return in[0].contiguous(); }, {leaf64_strided({2, 3}, 10)});
  check_grad([](const std::vector<Tensor>& in) { return in[0].clone() * in[0]; }, {leaf64({3}, 11)});
  // a round trip through f32 keeps the gradient flowing (values change by rounding only)
  Tensor x = leaf64({3}, 12);
  sum(x.to(DType::f32).to(DType::f64) * 2.0).backward();
  check_close(x.grad(), {2, 2, 2});
}

TEST_CASE("a small composite: softmax written with primitives") {
  Fn softmax = [](const std::vector<Tensor>& in) {
    Tensor x = in[0];
    Tensor e = exp(x - max(x, {-1}, true));
    return e / sum(e, {-1}, true);
  };
  Tensor x = leaf64({3, 5}, 1);
  std::vector<double> p = vals(softmax({x}));
  for (int r = 0; r < 3; ++r) {
    double s = 0;
    for (int c = 0; c < 5; ++c) s += p[size_t(r * 5 + c)];
    CHECK(s == doctest::Approx(1.0).epsilon(1e-12));
  }
  check_grad(softmax, {x});
  check_grad(softmax, {leaf64_transposed({3, 5}, 2)});
}

TEST_CASE("matmul_bias: matmul + bias in the GEMM's epilogue: gradients (f64), values, bf16 and errors") {
  using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
  Fn f = [](const std::vector<Tensor>& in) { return matmul_bias(in[0], in[1], in[2]); };
  check_grad(f, {leaf64({3, 4}, 1), leaf64({4, 5}, 2), leaf64({5}, 3)});
  check_grad(f, {leaf64({2, 3, 4}, 4), leaf64({4, 5}, 5), leaf64({5}, 6)});          // bias over batch and rows
  check_grad(f, {leaf64_transposed({3, 4}, 7), leaf64_transposed({4, 5}, 8), leaf64_strided({5}, 9)});
  check_grad(f, {leaf64({3, 4}, 10), randn({4, 5}, 11, TensorOptions{DType::f64}), leaf64({5}, 12)});
  check_grad(f, {leaf64({1, 1}, 13), leaf64({1, 1}, 14), leaf64({1}, 15)});

  // f32: bitwise the product plus the bias added afterwards (the same two roundings).
  Tensor a = randn({37, 70}, 20), b = randn({70, 45}, 21), bias = randn({45}, 22);
  CHECK(max_abs_diff(matmul_bias(a, b, bias), add(matmul(a, b), bias)) == 0.0);
  CHECK(max_abs_diff(matmul_bias(a.t().contiguous().t(), b, bias), add(matmul(a, b), bias)) == 0.0);
  // K = 0: the bias alone.
  CHECK(max_abs_diff(matmul_bias(randn({3, 0}, 23), randn({0, 45}, 24), bias), add(zeros({3, 45}), bias)) == 0.0);
  CHECK(max_abs_diff(matmul_bias(a, b, Tensor()), matmul(a, b)) == 0.0);

  // bf16 operands, f32 bias: the bias joins the f32 sum before the one rounding to bf16.
  Tensor a16 = a.to(DType::bf16), b16 = b.to(DType::bf16);
  Tensor y16 = matmul_bias(a16, b16, bias);
  CHECK(y16.dtype() == DType::bf16);
  Tensor want = add(matmul(a16.to(DType::f32), b16.to(DType::f32)), bias).to(DType::bf16);
  std::vector<double> got = vals(y16), exp = vals(want);
  size_t far = 0;
  for (size_t i = 0; i < got.size(); ++i) far += std::abs(got[i] - exp[i]) > std::abs(exp[i]) / 128 + 1e-6;
  CHECK(far == 0);
  // Under autocast: f32 operands lowered, f32 bias kept, gradients back in f32.
  Tensor la = a.detach(), lb = b.detach(), lbias = bias.detach();
  la.set_requires_grad(true);
  lb.set_requires_grad(true);
  lbias.set_requires_grad(true);
  Tensor y;
  {
    AutocastGuard guard;
    y = matmul_bias(la, lb, lbias);
  }
  CHECK(y.dtype() == DType::bf16);
  sum(y.to(DType::f32)).backward();
  CHECK(la.grad().dtype() == DType::f32);
  CHECK(lbias.grad().dtype() == DType::f32);
  std::vector<double> gbias = vals(lbias.grad());
  for (double v : gbias) CHECK(v == 37.0);  // d sum / d bias_j = rows, exact in f32

  CHECK_THROWS_WITH_AS(matmul_bias(a, b, randn({44}, 1)), doctest::Contains("matmul_bias: bias must be [45]"), Error);
  CHECK_THROWS_WITH_AS(matmul_bias(a, b, randn({45}, 1, TensorOptions{DType::f64})),
                       doctest::Contains("matmul_bias: bias must be f32"), Error);
  CHECK_THROWS_WITH_AS(matmul_bias(a16, b16, bias.to(DType::bf16)), doctest::Contains("matmul_bias: bias must be f32"),
                       Error);
}
