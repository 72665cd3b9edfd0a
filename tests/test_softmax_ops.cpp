// softmax, log_softmax and cross_entropy: forward (and the cross-entropy gradient) against the
// plain loops of tests/reference.h, gradients against finite differences (f64) on plain, odd-sized
// and non-contiguous inputs, stability for huge logits, ignore_index and reduction semantics, the
// f32 kernels against f64, and argument errors.
#include <functional>
#include <limits>

#include "ops/softmax.h"
#include "tests/reference.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;

size_t count_nonfinite(const std::vector<double>& v) {
  size_t n = 0;
  for (double x : v) n += !std::isfinite(x);
  return n;
}

// The plain references of tests/reference.h on vectors: rows of the last dim.
std::vector<double> ref_softmax(const std::vector<double>& x, int64_t n, bool log) {
  std::vector<double> y(x.size());
  ref::softmax_forward(y.data(), x.data(), int64_t(x.size()) / n, n, log);
  return y;
}

// Per-row losses (0 at ignored rows) and the number of non-ignored rows.
std::vector<double> ref_ce_rows(const std::vector<double>& x, const std::vector<int32_t>& t, int64_t V,
                                int64_t ignore, int64_t& count) {
  std::vector<double> loss(t.size());
  count = ref::cross_entropy_forward(loss.data(), x.data(), t.data(), int64_t(t.size()), V, ignore);
  return loss;
}

Tensor leaf_from(const Tensor& t) {
  Tensor l = t.detach();
  l.set_requires_grad(true);
  return l;
}

Tensor targets(const std::vector<int32_t>& v, const Shape& s) { return from_vector(v, s); }
}  // namespace

TEST_CASE("softmax and log_softmax forward match a plain reference") {
  for (DType dt : {DType::f32, DType::f64}) {
    const double tol = dt == DType::f32 ? 2e-6 : 1e-13;
    for (int64_t n : {1, 7, 33, 1000}) {
      CAPTURE(n);
      Tensor x = mul(randn({3, 2, n}, 5 + uint64_t(n), TensorOptions{dt}), 3.0);
      check_vals(vals(softmax(x)), ref_softmax(vals(x), n, false), tol);
      check_vals(vals(log_softmax(x)), ref_softmax(vals(x), n, true), tol);
    }
  }
}

TEST_CASE("softmax rows sum to 1 and log_softmax is stable for huge inputs (f32, threaded)") {
  Tensor x = mul(randn({64, 4096}, 8), 1e4);  // logits ~1e4: exp would overflow without the max shift
  std::vector<double> p = vals(softmax(x)), lp = vals(log_softmax(x)), xv = vals(x);
  for (int64_t r = 0; r < 64; ++r) {
    double s = 0;
    for (int64_t j = 0; j < 4096; ++j) s += p[size_t(r * 4096 + j)];
    CHECK(s == doctest::Approx(1.0).epsilon(1e-5));
  }
  REQUIRE(count_nonfinite(lp) == 0);
  check_vals(lp, ref_softmax(xv, 4096, true), 1e-6);
  // A row that is all -inf except one entry, and a row with +-1e30.
  Tensor y = from_vector<float>({-INFINITY, 0.f, -INFINITY, 1e30f, -1e30f, 0.f}, Shape{2, 3});
  check_vals(vals(softmax(y)), {0, 1, 0, 1, 0, 0}, 0);
  std::vector<double> ly = vals(log_softmax(y));
  CHECK(ly[1] == 0);
  CHECK(ly[3] == 0);
  CHECK(ly[4] == doctest::Approx(-2e30));
}

TEST_CASE("softmax over a dim other than the last") {
  Tensor x = randn({4, 5, 3}, 9, TensorOptions{DType::f64});
  Tensor y = softmax(x, 1);
  CHECK(y.is_contiguous());
  // reference: move dim 1 last, softmax, move back
  std::vector<double> xt = vals(x.transpose(1, 2).contiguous());
  std::vector<double> rt = ref_softmax(xt, 5, false);
  Tensor r = from_vector(rt, Shape{4, 3, 5}).transpose(1, 2).contiguous();
  check_vals(vals(y), vals(r), 1e-13);
  check_vals(vals(log_softmax(x, 0)), vals(log(softmax(x, 0))), 1e-12);
  Fn f = [](const std::vector<Tensor>& in) { return softmax(in[0], 0); };
  check_grad(f, {leaf64({3, 4}, 10)});
  Fn lf = [](const std::vector<Tensor>& in) { return log_softmax(in[0], -2); };
  check_grad(f, {leaf64({2, 3, 4}, 11)});
  check_grad(lf, {leaf64({2, 3, 4}, 11)});
}

TEST_CASE("softmax and log_softmax gradients match finite differences (f64)") {
  for (bool log : {false, true}) {
    CAPTURE(log);
    Fn f = [log](const std::vector<Tensor>& in) { return log ? log_softmax(in[0]) : softmax(in[0]); };
    check_grad(f, {leaf64({3, 4}, 20)});
    check_grad(f, {leaf64({1, 1}, 21)});
    check_grad(f, {leaf64({1, 7}, 22)});
    check_grad(f, {leaf64({4, 1}, 23)});
    check_grad(f, {leaf64({2, 3, 5}, 24)});
    check_grad_non_contiguous(f, {5, 4}, {3, 6}, 25);
  }
}

TEST_CASE("softmax and log_softmax f32 backward agree with f64") {
  for (bool log : {false, true}) {
    CAPTURE(log);
    Tensor x64 = mul(randn({50, 777}, 30, TensorOptions{DType::f64}), 4.0).to(DType::f32).to(DType::f64);
    Tensor v64 = randn({50, 777}, 31, TensorOptions{DType::f64}).to(DType::f32).to(DType::f64);
    Tensor l64 = leaf_from(x64), l32 = leaf_from(x64.to(DType::f32));
    auto op = [log](const Tensor& x) { return log ? log_softmax(x) : softmax(x); };
    sum(mul(op(l64), v64)).backward();
    sum(mul(op(l32), v64.to(DType::f32))).backward();
    check_vals(vals(l32.grad()), vals(l64.grad()), 2e-5);
  }
}

TEST_CASE("cross_entropy forward: reductions and ignore_index against a plain reference") {
  for (DType dt : {DType::f32, DType::f64}) {
    const double tol = dt == DType::f32 ? 2e-6 : 1e-13;
    Tensor x = mul(randn({2, 3, 5}, 40, TensorOptions{dt}), 2.0);
    std::vector<int32_t> tv = {4, -100, 0, 2, 2, -100};
    Tensor t = targets(tv, {2, 3});
    int64_t count = 0;
    std::vector<double> rows = ref_ce_rows(vals(x), tv, 5, -100, count);
    REQUIRE(count == 4);
    double total = 0;
    for (double l : rows) total += l;

    Tensor none = cross_entropy(x, t, -100, Reduction::none);
    CHECK(none.shape() == Shape{2, 3});
    check_vals(vals(none), rows, tol);
    CHECK(vals(none)[1] == 0);
    check_vals(vals(cross_entropy(x, t, -100, Reduction::sum)), {total}, tol);
    Tensor mean = cross_entropy(x, t);
    CHECK(mean.dim() == 0);
    check_vals(vals(mean), {total / 4}, tol);  // divided by the 4 non-ignored rows, not 6

    // A custom ignore_index that is also a valid class: rows with target 2 are skipped.
    std::vector<int32_t> tv2 = {4, 1, 0, 2, 2, 3};
    std::vector<double> rows2 = ref_ce_rows(vals(x), tv2, 5, 2, count);
    REQUIRE(count == 4);
    check_vals(vals(cross_entropy(x, targets(tv2, {2, 3}), 2, Reduction::none)), rows2, tol);
    double total2 = 0;
    for (double l : rows2) total2 += l;
    check_vals(vals(cross_entropy(x, targets(tv2, {2, 3}), 2)), {total2 / 4}, tol);
  }
}

TEST_CASE("cross_entropy: ignored rows get exactly zero gradient, mean scales by the kept count") {
  Tensor x = leaf_from(randn({4, 6}, 41, TensorOptions{DType::f64}));
  Tensor t = targets({1, -100, 5, -100}, {4});
  cross_entropy(x, t).backward();
  const std::vector<int32_t> tv = {1, -100, 5, -100};
  std::vector<double> g = vals(x.grad()), xv = vals(x), want(xv.size());
  ref::cross_entropy_backward(want.data(), xv.data(), tv.data(), 4, 6, -100, 1.0 / 2.0);  // mean over 2 kept rows
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t j = 0; j < 6; ++j) {
      const size_t i = size_t(r * 6 + j);
      if (r == 1 || r == 3) {
        CHECK(g[i] == 0.0);
      } else {
        CHECK(g[i] == doctest::Approx(want[i]).epsilon(1e-12));
      }
    }
}

TEST_CASE("cross_entropy: every row ignored gives loss 0 and zero gradient (torch gives NaN)") {
  for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none}) {
    Tensor x = leaf_from(randn({3, 4}, 42));
    Tensor loss = cross_entropy(x, targets({-1, -1, -1}, {3}), -1, red);
    for (double v : vals(loss)) CHECK(v == 0.0);
    sum(loss).backward();
    for (double v : vals(x.grad())) CHECK(v == 0.0);
  }
}

TEST_CASE("cross_entropy is stable for logits ~1e4 (f32)") {
  Tensor x64 = mul(randn({300, 4096}, 43, TensorOptions{DType::f64}), 1e4).to(DType::f32).to(DType::f64);
  Tensor tg = randint(0, 4096, {300}, 44);
  std::vector<int32_t> tv = tg.to_vector<int32_t>();
  int64_t count = 0;
  std::vector<double> rows = ref_ce_rows(vals(x64), tv, 4096, -100, count);
  Tensor x = leaf_from(x64.to(DType::f32));
  Tensor l = cross_entropy(x, tg, -100, Reduction::none);
  REQUIRE(count_nonfinite(vals(l)) == 0);
  check_vals(vals(l), rows, 1e-6);
  sum(l).backward();
  std::vector<double> g = vals(x.grad());
  REQUIRE(count_nonfinite(g) == 0);
  // Each row of softmax - onehot sums to 0, up to the f32 rounding of the saved logsumexp (the
  // backward forms p = exp(x - lse), so every p carries lse's relative error |lse| 2^-24).
  std::vector<double> xv = vals(x64);
  for (int64_t r = 0; r < 300; ++r) {
    double s = 0;
    for (int64_t j = 0; j < 4096; ++j) s += g[size_t(r * 4096 + j)];
    const double lse = ref::logsumexp(xv.data() + r * 4096, 4096);
    CHECK(std::abs(s) <= std::abs(lse) * 0x1p-23 + 1e-6);
  }
}

TEST_CASE("cross_entropy gradients match finite differences (f64)") {
  for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none}) {
    CAPTURE(int(red));
    SUBCASE("plain, with an ignored row") {
      Tensor t = targets({3, -100, 0, 4}, {4});
      check_grad([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, -100, red); },
                 {leaf64({4, 5}, 50)});
    }
    SUBCASE("one row") {
      Tensor t = targets({6}, {1});
      check_grad([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, -100, red); },
                 {leaf64({1, 7}, 51)});
    }
    SUBCASE("one class (V = 1)") {
      Tensor t = targets({0, 0, 0}, {3});
      check_grad([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, -100, red); },
                 {leaf64({3, 1}, 52)});
    }
    SUBCASE("3-D logits") {
      Tensor t = targets({0, 3, 2, 1, -100, 3}, {2, 3});
      check_grad([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, -100, red); },
                 {leaf64({2, 3, 4}, 53)});
    }
    SUBCASE("non-contiguous logits") {
      Tensor t = targets({0, 3, 2, 1, 4}, {5});
      Tensor lt = leaf64_transposed({5, 5}, 54), ls = leaf64_strided({5, 5}, 55);
      REQUIRE_FALSE(lt.is_contiguous());
      REQUIRE_FALSE(ls.is_contiguous());
      check_grad([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, -100, red); }, {lt});
      check_grad([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, -100, red); }, {ls});
    }
  }
}

TEST_CASE("cross_entropy f32 backward agrees with f64 (threaded)") {
  for (Reduction red : {Reduction::mean, Reduction::none}) {
    Tensor x64 = mul(randn({256, 1000}, 60, TensorOptions{DType::f64}), 3.0).to(DType::f32).to(DType::f64);
    std::vector<int32_t> tv = randint(0, 1000, {256}, 61).to_vector<int32_t>();
    for (size_t i = 0; i < tv.size(); i += 7) tv[i] = -100;
    Tensor t = targets(tv, {256});
    Tensor l64 = leaf_from(x64), l32 = leaf_from(x64.to(DType::f32));
    Tensor v = randn({256}, 62, TensorOptions{DType::f64});
    auto loss = [&](const Tensor& x, const Tensor& w) {
      Tensor l = cross_entropy(x, t, -100, red);
      return red == Reduction::none ? sum(mul(l, w)) : l;
    };
    loss(l64, v).backward();
    loss(l32, v.to(DType::f32)).backward();
    check_vals(vals(l32.grad()), vals(l64.grad()), 2e-6);
  }
}

TEST_CASE("cross_entropy errors name the bad target, its position, the op and the shapes") {
  Tensor x = randn({2, 3, 5}, 70);
  CHECK_THROWS_WITH_AS(cross_entropy(x, targets({0, 1, 2, 3, 7, 4}, {2, 3})),
                       doctest::Contains("cross_entropy: target 7 at position [1, 1] is out of range [0, 5)"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, targets({0, 1, 2, 3, -1, 4}, {2, 3})),
                       doctest::Contains("cross_entropy: target -1 at position [1, 1]"), Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, targets({0, 1, 2}, {3})),
                       doctest::Contains("cross_entropy: targets must have the logits' leading shape [2, 3], got "
                                         "targets i32[3] on cpu for logits f32[2, 3, 5] on cpu"),
                       Error);
  CHECK_THROWS_WITH_AS(cross_entropy(x, zeros({2, 3})), doctest::Contains("cross_entropy: targets must be an i32"),
                       Error);
  CHECK_THROWS_WITH_AS(softmax(x, 3), doctest::Contains("softmax"), Error);
}

TEST_CASE("cross_entropy: bf16 logits are read as they are; f32 loss, bf16 gradient rounded once from f32") {
  for (Reduction red : {Reduction::mean, Reduction::sum, Reduction::none}) {
    CAPTURE(int(red));
    Tensor x32 = mul(randn({37, 301}, 70), 4.0).to(DType::bf16).to(DType::f32);  // bf16-representable
    std::vector<int32_t> tv;
    for (int i = 0; i < 37; ++i) tv.push_back(i % 5 == 0 ? -100 : (i * 97) % 301);
    Tensor t = from_vector(tv);
    Tensor l16 = x32.to(DType::bf16).detach(), l32 = x32.detach();
    l16.set_requires_grad(true);
    l32.set_requires_grad(true);
    Tensor y16 = cross_entropy(l16, t, -100, red), y32 = cross_entropy(l32, t, -100, red);
    CHECK(y16.dtype() == DType::f32);
    // The same f32 arithmetic on the same values; only the order of the row sums may differ (the
    // ISA paths vectorise the bf16 and f32 loads differently): a few f32 ulp of the loss.
    const double scale = std::max(1.0, vals(max(abs(y32))).front());
    CHECK(max_abs_diff(y16, y32) <= 8 * 6e-8 * scale);
    Tensor r = red == Reduction::none ? randn({37}, 71) : Tensor();
    (r.defined() ? sum(mul(y16, r)) : y16).backward();
    (r.defined() ? sum(mul(y32, r)) : y32).backward();
    REQUIRE(l16.grad().dtype() == DType::bf16);
    std::vector<double> g = vals(l16.grad()), want = vals(l32.grad().to(DType::bf16));
    size_t differ = 0, far = 0;
    for (size_t i = 0; i < g.size(); ++i) {
      differ += g[i] != want[i];
      far += std::abs(g[i] - want[i]) > std::abs(want[i]) / 128;
    }
    CHECK(far == 0);                     // at most one bf16 ulp
    CHECK(differ <= g.size() / 100);     // and only where the target's subtraction rounds differently
  }
}
