// ops/losses: l1/mse, l2_normalize, cosine_similarity and InfoNCE (plain and grouped), forward
// against the plain loops of tests/reference.h and gradients against finite differences in f64.
#include <cmath>
#include <functional>

#include "ops/losses.h"
#include "tests/reference.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;


// Rows of a [R, D] tensor as plain vectors.
std::vector<std::vector<double>> rows(const Tensor& t) {
  std::vector<double> v = vals(t);
  const size_t r = size_t(t.size(0)), d = size_t(t.size(1));
  std::vector<std::vector<double>> out(r);
  for (size_t i = 0; i < r; ++i) out[i].assign(v.begin() + long(i * d), v.begin() + long((i + 1) * d));
  return out;
}

// Plain InfoNCE (tests/reference.h): mean over rows of logsumexp(S[i]) - S[i, 0] with
// S[i, j] = cos(q_i, c_ij) / tau; every row has the same number of candidates.
double ref_info_nce(const std::vector<std::vector<double>>& q, const std::vector<std::vector<std::vector<double>>>& c,
                    double tau) {
  const int64_t G = int64_t(q.size()), C = int64_t(c[0].size()), D = int64_t(q[0].size());
  std::vector<double> qf, cf;
  for (const auto& row : q) qf.insert(qf.end(), row.begin(), row.end());
  for (const auto& group : c)
    for (const auto& row : group) cf.insert(cf.end(), row.begin(), row.end());
  return ref::info_nce_forward(qf.data(), cf.data(), G, C, D, tau);
}

// Candidates for the in-batch form: row i sees every doc, with its own doc moved to slot 0.
std::vector<std::vector<std::vector<double>>> in_batch(const std::vector<std::vector<double>>& d) {
  std::vector<std::vector<std::vector<double>>> c(d.size());
  for (size_t i = 0; i < d.size(); ++i) {
    c[i].push_back(d[i]);
    for (size_t j = 0; j < d.size(); ++j)
      if (j != i) c[i].push_back(d[j]);
  }
  return c;
}

Tensor t64(std::vector<double> v, const Shape& s) { return from_vector(v, s); }
}  // namespace

TEST_CASE("l1_loss and mse_loss: forward, reductions, gradients, shape checks") {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = randn({3, 5}, 1, TensorOptions{dt}), y = randn({3, 5}, 2, TensorOptions{dt});
    std::vector<double> xv = vals(x), yv = vals(y), l1(xv.size()), l2(xv.size());
    ref::l1_loss_forward(l1.data(), xv.data(), yv.data(), int64_t(xv.size()));
    ref::mse_loss_forward(l2.data(), xv.data(), yv.data(), int64_t(xv.size()));
    double s1 = 0, s2 = 0;
    for (size_t i = 0; i < xv.size(); ++i) s1 += l1[i], s2 += l2[i];
    const double tol = dt == DType::f32 ? 1e-6 : 1e-12;
    check_close(l1_loss(x, y, Reduction::none), l1, tol);
    check_close(mse_loss(x, y, Reduction::none), l2, tol);
    check_close(l1_loss(x, y, Reduction::sum), {s1}, tol);
    check_close(mse_loss(x, y, Reduction::sum), {s2}, tol);
    check_close(l1_loss(x, y), {s1 / 15}, tol);
    check_close(mse_loss(x, y), {s2 / 15}, tol);
    CHECK(l1_loss(x, y).dim() == 0);
    CHECK(mse_loss(x, y, Reduction::none).shape() == Shape{3, 5});
  }
  // non-contiguous operands read through their strides
  Tensor xt = randn({5, 3}, 3, TensorOptions{DType::f64}).t(), yt = randn({3, 5}, 4, TensorOptions{DType::f64});
  check_close(mse_loss(xt, yt), {vals(mean(square(sub(xt.contiguous(), yt))))[0]}, 1e-12);

  for (Reduction r : {Reduction::none, Reduction::mean, Reduction::sum}) {
    Fn f1 = [r](const std::vector<Tensor>& in) { return l1_loss(in[0], in[1], r); };
    Fn f2 = [r](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], r); };
    for (const Fn& f : {f1, f2}) {
      check_grad(f, {leaf64({3, 4}, 10), leaf64({3, 4}, 11)});
      check_grad(f, {leaf64_transposed({3, 4}, 12), leaf64_strided({3, 4}, 13)});
      check_grad(f, {leaf64({1, 1, 7}, 14), leaf64_transposed({1, 1, 7}, 15)});
      check_grad(f, {leaf64({}, 16), leaf64({}, 17)});
    }
  }
  // |d| at d = 0 has gradient 0, as torch
  Tensor a = from_vector(std::vector<double>{1, 2, 3}, TensorOptions{DType::f64}.with_requires_grad(true));
  Tensor b = from_vector(std::vector<double>{1, 0, 5});
  l1_loss(a, b, Reduction::sum).backward();
  check_close(a.grad(), {0, 1, -1});

  // no broadcasting, no dtype mixing
  CHECK_THROWS_WITH_AS(mse_loss(randn({3, 4}, 1), randn({4}, 2)), doctest::Contains("same shape"), Error);
  CHECK_THROWS_WITH_AS(l1_loss(randn({3, 4}, 1), randn({1, 4}, 2)), doctest::Contains("same shape"), Error);
  CHECK_THROWS_WITH_AS(l1_loss(randn({3, 4}, 1), randn({3, 4}, 2, TensorOptions{DType::f64})),
                       doctest::Contains("dtype mismatch"), Error);
}

TEST_CASE("l2_normalize: forward, any dim, gradients, eps clamp") {
  Tensor x = randn({3, 4}, 1, TensorOptions{DType::f64});
  std::vector<double> xv = vals(x), want(xv.size());
  ref::l2_normalize_forward(want.data(), xv.data(), 3, 4);
  check_close(l2_normalize(x), want, 1e-12);
  check_close(l2_normalize(x, 1), want, 1e-12);
  // dim 0 normalises columns
  check_close(l2_normalize(x, 0), vals(l2_normalize(x.t().contiguous(), 1).t().contiguous()), 1e-12);
  // f32 agrees with f64
  check_close(l2_normalize(x.to(DType::f32)), want, 1e-6);

  Fn f = [](const std::vector<Tensor>& in) { return l2_normalize(in[0]); };
  Fn f0 = [](const std::vector<Tensor>& in) { return l2_normalize(in[0], 0); };
  check_grad(f, {leaf64({3, 5}, 2)});
  check_grad(f, {leaf64_transposed({4, 3}, 3)});
  check_grad(f, {leaf64_strided({2, 3, 5}, 4)});
  check_grad(f0, {leaf64_strided({4, 3}, 5)});
  check_grad(f, {leaf64({1, 1}, 6)});
  check_grad(f, {leaf64({7}, 7)});

  // Below eps the vector is divided by eps and the gradient is that of x / eps.
  Tensor tiny = mul(randn({2, 3}, 8, TensorOptions{DType::f64}), 1e-3);
  check_close(l2_normalize(tiny, -1, 0.5), vals(mul(tiny, 2.0)), 1e-12);
  Tensor small_leaf = tiny.detach();
  small_leaf.set_requires_grad(true);
  check_grad([](const std::vector<Tensor>& in) { return l2_normalize(in[0], -1, 0.5); }, {small_leaf});
  // one row clamped, one not
  Tensor mixed = t64({1e-3, -2e-3, 1.5, 0.5}, {2, 2});
  mixed.set_requires_grad(true);
  check_grad([](const std::vector<Tensor>& in) { return l2_normalize(in[0], -1, 0.5); }, {mixed});
  // the zero vector maps to zero with a finite gradient (1/eps), not NaN
  Tensor z = zeros({3}, TensorOptions{DType::f64, kCPU, true});
  Tensor y = l2_normalize(z);
  check_close(y, {0, 0, 0});
  sum(mul(y, t64({1, 2, 3}, {3}))).backward();
  check_close(z.grad(), {1e12, 2e12, 3e12}, 1e-12);
}

TEST_CASE("cosine_similarity: torch semantics, broadcasting, near-zero vectors") {
  Tensor a = randn({4, 6}, 1, TensorOptions{DType::f64}), b = randn({4, 6}, 2, TensorOptions{DType::f64});
  std::vector<double> av = vals(a), bv = vals(b), want(4);
  ref::cosine_similarity_forward(want.data(), av.data(), bv.data(), 4, 6);
  Tensor c = cosine_similarity(a, b);
  CHECK(c.shape() == Shape{4});
  check_close(c, want, 1e-12);
  check_close(cosine_similarity(a.to(DType::f32), b.to(DType::f32)), want, 1e-6);
  check_close(cosine_similarity(a.t(), b.t(), 0), want, 1e-12);
  // a vector with itself, and with its negation
  check_close(cosine_similarity(a, a), std::vector<double>(4, 1.0), 1e-12);
  check_close(cosine_similarity(a, neg(a)), std::vector<double>(4, -1.0), 1e-12);

  // broadcasting: [3, 1, 5] vs [4, 5] -> [3, 4]
  Tensor p = randn({3, 1, 5}, 3, TensorOptions{DType::f64}), q = randn({4, 5}, 4, TensorOptions{DType::f64});
  Tensor pq = cosine_similarity(p, q);
  REQUIRE(pq.shape() == Shape{3, 4});
  auto rp = rows(p.reshape({3, 5})), rq = rows(q);
  std::vector<double> wpq;
  for (auto& u : rp)
    for (auto& v : rq) ref::cosine_similarity_forward(&wpq.emplace_back(), u.data(), v.data(), 1, 5);
  check_close(pq, wpq, 1e-12);
  // size 1 along the reduced dim broadcasts before normalising: [2, 1] vs [2, 3]
  Tensor s = t64({2, -1}, {2, 1}), m = t64({1, 2, 2, 1, 1, -1}, {2, 3});
  check_close(cosine_similarity(s, m), {5.0 / (std::sqrt(3.0) * 3.0), -1.0 / (std::sqrt(3.0) * std::sqrt(3.0))}, 1e-12);

  Fn f = [](const std::vector<Tensor>& in) { return cosine_similarity(in[0], in[1]); };
  Fn f0 = [](const std::vector<Tensor>& in) { return cosine_similarity(in[0], in[1], 0); };
  check_grad(f, {leaf64({3, 5}, 5), leaf64({3, 5}, 6)});
  check_grad(f, {leaf64_transposed({3, 5}, 7), leaf64_strided({3, 5}, 8)});
  check_grad(f, {leaf64({3, 1, 5}, 9), leaf64({4, 5}, 10)});
  check_grad(f, {leaf64({2, 1}, 11), leaf64_strided({2, 3}, 12)});
  check_grad(f0, {leaf64_transposed({4, 3}, 13), leaf64({4, 1}, 14)});
  check_grad(f, {leaf64({1, 1}, 15), leaf64({1, 1}, 16)});

  // Near-zero vectors: each norm is clamped separately (torch >= 1.12), so a tiny a gives
  // <a, b> / (eps * ||b||) rather than NaN or a value outside [-1, 1].
  Tensor tiny = t64({3e-10, -4e-10, 0}, {1, 3}), other = t64({1, 2, 2}, {1, 3});
  check_close(cosine_similarity(tiny, other), {(3e-10 - 8e-10) / (1e-8 * 3.0)}, 1e-12);
  Tensor zero = zeros({1, 3}, TensorOptions{DType::f64, kCPU, true});
  Tensor cz = cosine_similarity(zero, other);
  check_close(cz, {0.0});
  cz.backward(ones({1}, TensorOptions{DType::f64}));
  check_close(zero.grad(), {1e8 / 3, 2e8 / 3, 2e8 / 3}, 1e-10);
  // the clamped region is differentiable (eps large enough for finite differences to stay inside)
  Tensor ta = mul(randn({2, 4}, 17, TensorOptions{DType::f64}), 1e-2).detach();
  ta.set_requires_grad(true);
  check_grad([](const std::vector<Tensor>& in) { return cosine_similarity(in[0], in[1], -1, 0.5); },
             {ta, leaf64({2, 4}, 18)});

  CHECK_THROWS_WITH_AS(cosine_similarity(randn({3, 4}, 1), randn({3, 5}, 2)), doctest::Contains("cosine_similarity"),
                       Error);
}

TEST_CASE("info_nce_loss: hand-computed cases, temperature, gradients") {
  // 2x2 by hand: q = I, d = [[1, 0], [1, 1]], tau = 0.5.
  // S = [[1, 1/sqrt2], [0, 1/sqrt2]] / 0.5 = [[2, sqrt2], [0, sqrt2]]
  const double r2 = std::sqrt(2.0);
  const double l0 = std::log(std::exp(2.0) + std::exp(r2)) - 2.0;
  const double l1 = std::log(1.0 + std::exp(r2)) - r2;
  Tensor q2 = t64({1, 0, 0, 1}, {2, 2}), d2 = t64({1, 0, 1, 1}, {2, 2});
  check_close(info_nce_loss(q2, d2, 0.5), {(l0 + l1) / 2}, 1e-12);
  // norms do not matter
  check_close(info_nce_loss(mul(q2, 3.0), mul(d2, 0.25), 0.5), {(l0 + l1) / 2}, 1e-12);
  // f32
  check_close(info_nce_loss(q2.to(DType::f32), d2.to(DType::f32), 0.5), {(l0 + l1) / 2}, 1e-6);

  // 3x3 by hand: q = I3, d = [[1,1,0],[0,1,0],[0,0,2]], tau = 1. Cosines:
  // row 0: [1/sqrt2, 0, 0]; row 1: [1/sqrt2, 1, 0]; row 2: [0, 0, 1]
  {
    Tensor q = t64({1, 0, 0, 0, 1, 0, 0, 0, 1}, {3, 3}), d = t64({1, 1, 0, 0, 1, 0, 0, 0, 2}, {3, 3});
    const double c = 1 / r2, e = std::exp(1.0);
    const double row0 = std::log(std::exp(c) + 2.0) - c;
    const double row1 = std::log(std::exp(c) + e + 1.0) - 1.0;
    const double row2 = std::log(2.0 + e) - 1.0;
    check_close(info_nce_loss(q, d, 1.0), {(row0 + row1 + row2) / 3}, 1e-12);
  }

  // random cases against the plain loop, over temperatures
  Tensor q = randn({5, 8}, 1, TensorOptions{DType::f64}), d = randn({5, 8}, 2, TensorOptions{DType::f64});
  for (double tau : {0.02, 0.1, 1.0, 3.0}) {
    INFO("tau " << tau);
    check_close(info_nce_loss(q, d, tau), {ref_info_nce(rows(q), in_batch(rows(d)), tau)}, 1e-12);
  }
  CHECK(info_nce_loss(q, d).item() == doctest::Approx(ref_info_nce(rows(q), in_batch(rows(d)), 0.02)).epsilon(1e-12));
  // Temperature scales the logits: aligned orthogonal pairs get sharper (lower loss) as tau falls,
  // and with one pair there is nothing to contrast: the loss is exactly 0.
  Tensor eye = t64({1, 0, 0, 0, 1, 0, 0, 0, 1}, {3, 3});
  const double hi = info_nce_loss(eye, eye, 1.0).item(), lo = info_nce_loss(eye, eye, 0.1).item();
  CHECK(hi == doctest::Approx(std::log(1 + 2 * std::exp(-1.0))).epsilon(1e-12));
  CHECK(lo == doctest::Approx(std::log(1 + 2 * std::exp(-10.0))).epsilon(1e-12));
  CHECK(info_nce_loss(randn({1, 4}, 3, TensorOptions{DType::f64}), randn({1, 4}, 4, TensorOptions{DType::f64}))
            .item() == 0.0);

  Fn f = [](const std::vector<Tensor>& in) { return info_nce_loss(in[0], in[1], 0.5); };
  check_grad(f, {leaf64({4, 6}, 5), leaf64({4, 6}, 6)});
  check_grad(f, {leaf64_transposed({3, 5}, 7), leaf64_strided({3, 5}, 8)});
  check_grad(f, {leaf64({1, 3}, 9), leaf64({1, 3}, 10)});
  check_grad([](const std::vector<Tensor>& in) { return info_nce_loss(in[0], in[1], 3.0); },
             {leaf64({5, 3}, 11), leaf64_transposed({5, 3}, 12)});

  CHECK_THROWS_WITH_AS(info_nce_loss(randn({3, 4}, 1), randn({2, 4}, 2)), doctest::Contains("info_nce_loss"), Error);
  CHECK_THROWS_WITH_AS(info_nce_loss(randn({3, 4}, 1), randn({3, 4}, 2), 0.0), doctest::Contains("temperature"),
                       Error);
  CHECK_THROWS_WITH_AS(info_nce_loss(randn({4}, 1), randn({4}, 2)), doctest::Contains("[N, D]"), Error);
}

TEST_CASE("info_nce_loss_grouped: candidate 0 is the positive") {
  // one group by hand: q = [1, 0], candidates [[1, 1], [1, 0], [0, 1]] with tau 1:
  // cosines [1/sqrt2, 1, 0], loss = logsumexp - 1/sqrt2
  const double c = 1 / std::sqrt(2.0);
  Tensor q1 = t64({1, 0}, {1, 2}), c1 = t64({1, 1, 1, 0, 0, 1}, {1, 3, 2});
  check_close(info_nce_loss_grouped(q1, c1, 1.0), {std::log(std::exp(c) + std::exp(1.0) + 1.0) - c}, 1e-12);

  Tensor q = randn({3, 6}, 1, TensorOptions{DType::f64}), cand = randn({3, 5, 6}, 2, TensorOptions{DType::f64});
  std::vector<std::vector<std::vector<double>>> cv(3);
  for (int64_t g = 0; g < 3; ++g) cv[size_t(g)] = rows(cand.select(0, g));
  for (double tau : {0.02, 0.5, 2.0}) {
    INFO("tau " << tau);
    check_close(info_nce_loss_grouped(q, cand, tau), {ref_info_nce(rows(q), cv, tau)}, 1e-12);
  }
  check_close(info_nce_loss_grouped(q.to(DType::f32), cand.to(DType::f32), 0.5), {ref_info_nce(rows(q), cv, 0.5)},
              1e-5);
  // One candidate: nothing to contrast.
  CHECK(info_nce_loss_grouped(q, cand.narrow(1, 0, 1)).item() == 0.0);
  // the in-batch form is the grouped form with each row's docs reordered positive-first
  Tensor qq = randn({3, 4}, 3, TensorOptions{DType::f64}), dd = randn({3, 4}, 4, TensorOptions{DType::f64});
  std::vector<double> packed;
  for (auto& grp : in_batch(rows(dd)))
    for (auto& v : grp) packed.insert(packed.end(), v.begin(), v.end());
  check_close(info_nce_loss_grouped(qq, t64(packed, {3, 3, 4}), 0.3), {info_nce_loss(qq, dd, 0.3).item()}, 1e-12);

  Fn f = [](const std::vector<Tensor>& in) { return info_nce_loss_grouped(in[0], in[1], 0.5); };
  check_grad(f, {leaf64({2, 4}, 5), leaf64({2, 3, 4}, 6)});
  check_grad(f, {leaf64_transposed({3, 4}, 7), leaf64_strided({3, 5, 4}, 8)});
  check_grad(f, {leaf64({1, 3}, 9), leaf64_transposed({1, 1, 3}, 10)});

  CHECK_THROWS_WITH_AS(info_nce_loss_grouped(randn({3, 4}, 1), randn({3, 5, 6}, 2)),
                       doctest::Contains("[G, C, D]"), Error);
  CHECK_THROWS_WITH_AS(info_nce_loss_grouped(randn({2, 4}, 1), randn({3, 5, 4}, 2)),
                       doctest::Contains("[G, C, D]"), Error);
  CHECK_THROWS_WITH_AS(info_nce_loss_grouped(randn({3, 4}, 1), randn({3, 5, 4}, 2), -1.0),
                       doctest::Contains("temperature"), Error);
}
