// ops/attention: the fused attention kernel against the textbook softmax(q k^T * scale) v, its
// gradients (f64 gradcheck), causality bit for bit, and shapes that cross the kernel's tiles.
#include <omp.h>

#include <cmath>
#include <functional>

#include "core/autocast.h"
#include "core/backend.h"
#include "cpu/gemm.h"
#include "cpu/gemm_kernels.h"
#include "ops/attention.h"
#include "tests/reference.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {


// The plain reference (tests/reference.h) on the values of q, k, v [B, H, T, Dh].
std::vector<double> naive_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, double scale) {
  std::vector<double> qv = vals(q), kv = vals(k), vv = vals(v), out(qv.size());
  ref::attention_forward(out.data(), qv.data(), kv.data(), vv.data(), q.size(0) * q.size(1), q.size(2), q.size(3),
                         causal, scale);
  return out;
}

void check_forward(const Shape& shape, bool causal, double scale, DType dt, uint64_t seed) {
  Tensor q = randn(shape, seed, TensorOptions{dt}), k = randn(shape, seed + 1, TensorOptions{dt}),
         v = randn(shape, seed + 2, TensorOptions{dt});
  std::vector<double> got = vals(scaled_dot_product_attention(q, k, v, causal, scale));
  std::vector<double> ref = naive_attention(q, k, v, causal, scale);
  const double tol = dt == DType::f32 ? 2e-5 : 1e-12;
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) bad += !(std::abs(got[i] - ref[i]) <= tol * (1 + std::abs(ref[i])));
  INFO("shape " << shape_str(shape) << " causal " << causal << " scale " << scale << " " << dtype_name(dt));
  CHECK(bad == 0);
}

Tensor leaf_from(const Tensor& t) {
  Tensor l = t.detach();
  l.set_requires_grad(true);
  return l;
}

}  // namespace

TEST_CASE("attention forward matches softmax(q k^T * scale) v") {
  for (DType dt : {DType::f32, DType::f64}) {
    for (bool causal : {true, false}) {
      check_forward({1, 1, 1, 4}, causal, 0, dt, 1);     // T = 1
      check_forward({2, 3, 5, 3}, causal, 0, dt, 4);     // odd T, odd Dh
      check_forward({1, 2, 7, 16}, causal, 0.3, dt, 7);  // explicit scale
      check_forward({1, 2, 70, 32}, causal, 0, dt, 10);  // crosses the 64-row tiles
      check_forward({2, 1, 130, 5}, causal, 0, dt, 13);  // three tiles, ragged, odd Dh
      check_forward({1, 1, 128, 64}, causal, 0, dt, 16); // exact tiles
      check_forward({1, 1, 67, 17}, causal, 0, dt, 19);  // Dh not a vector multiple
      // 16 heads on two threads: whole heads per work item (the other shapes: a query block each).
      const int saved_threads = omp_get_max_threads();
      omp_set_num_threads(2);
      check_forward({2, 8, 130, 12}, causal, 0, dt, 22);
      omp_set_num_threads(saved_threads);
    }
  }
  // Large scores: the online softmax must not overflow where the naive exp would.
  Tensor q = mul(randn({1, 1, 70, 8}, 1), 30.0), k = mul(randn({1, 1, 70, 8}, 2), 30.0), v = randn({1, 1, 70, 8}, 3);
  std::vector<double> got = vals(scaled_dot_product_attention(q, k, v));
  for (double x : got) CHECK(std::isfinite(x));
  std::vector<double> ref = naive_attention(q, k, v, true, 0);
  for (size_t i = 0; i < ref.size(); ++i) CHECK(got[i] == doctest::Approx(ref[i]).epsilon(1e-4));
}

TEST_CASE("attention gradients (f64 gradcheck) for q, k and v") {
  for (bool causal : {true, false}) {
    auto f = [causal](double scale) {
      return [causal, scale](const std::vector<Tensor>& in) {
        return scaled_dot_product_attention(in[0], in[1], in[2], causal, scale);
      };
    };
    CAPTURE(causal);
    check_grad(f(0), {leaf64({1, 1, 1, 3}, 1), leaf64({1, 1, 1, 3}, 2), leaf64({1, 1, 1, 3}, 3)});  // T = 1
    check_grad(f(0), {leaf64({2, 2, 5, 3}, 4), leaf64({2, 2, 5, 3}, 5), leaf64({2, 2, 5, 3}, 6)});  // odd T, Dh
    check_grad(f(0.7), {leaf64({1, 1, 7, 4}, 7), leaf64({1, 1, 7, 4}, 8), leaf64({1, 1, 7, 4}, 9)});
    // Tiles: T = 70 crosses a 64-row tile boundary (and odd Dh pads the vectors).
    check_grad(f(0), {leaf64({1, 1, 70, 3}, 10), leaf64({1, 1, 70, 3}, 11), leaf64({1, 1, 70, 3}, 12)});
    // As models produce them: [B, T, H, Dh] projections transposed to [B, H, T, Dh]; v strided.
    Tensor q = leaf_from(randn({2, 6, 2, 3}, 13, TensorOptions{DType::f64}).transpose(1, 2));
    Tensor k = leaf_from(randn({2, 6, 2, 3}, 14, TensorOptions{DType::f64}).transpose(1, 2));
    Tensor v = leaf64_strided({2, 2, 6, 3}, 15);
    CHECK_FALSE(q.is_contiguous());
    CHECK_FALSE(v.is_contiguous());
    check_grad(f(0), {q, k, v});
  }
}

TEST_CASE("causal attention: later positions never change earlier outputs or receive their gradient") {
  const int64_t T = 70, Dh = 8;
  // bf16: the pair-product kernels where the CPU has them (masked probabilities are exact zeros
  // before and after rounding).
  auto rnd = [](const Shape& shape, uint64_t seed, DType dt) {
    return dt == DType::bf16 ? randn(shape, seed).to(dt) : randn(shape, seed, TensorOptions{dt});
  };
  for (DType dt : {DType::f32, DType::f64, DType::bf16}) {
    Tensor q = rnd({1, 2, T, Dh}, 1, dt), k = rnd({1, 2, T, Dh}, 2, dt), v = rnd({1, 2, T, Dh}, 3, dt);
    std::vector<double> base = vals(scaled_dot_product_attention(q, k, v));
    for (int64_t s : {1, 40, 63, 64, 69}) {
      // Replace q, k and v at positions >= s with other values.
      auto perturb = [&](const Tensor& x, uint64_t seed) {
        Tensor other = rnd(x.shape(), seed, dt);
        return cat({x.narrow(2, 0, s), other.narrow(2, s, T - s)}, 2);
      };
      std::vector<double> y = vals(scaled_dot_product_attention(perturb(q, 10), perturb(k, 11), perturb(v, 12)));
      int changed = 0;
      for (int64_t bh = 0; bh < 2; ++bh)
        for (int64_t t = 0; t < s; ++t)
          for (int64_t d = 0; d < Dh; ++d) {
            const size_t i = size_t((bh * T + t) * Dh + d);
            changed += y[i] != base[i];
          }
      CAPTURE(s);
      CHECK(changed == 0);
    }
  }
  // A loss on position t gives k and v exactly zero gradient at positions > t.
  for (DType dt : {DType::f64, DType::bf16}) {
    Tensor q = leaf_from(rnd({1, 1, T, Dh}, 4, dt)), k = leaf_from(rnd({1, 1, T, Dh}, 5, dt)),
           v = leaf_from(rnd({1, 1, T, Dh}, 6, dt));
    const int64_t t = 30;
    Tensor y = scaled_dot_product_attention(q, k, v).narrow(2, t, 1);
    y.backward(rnd(y.shape(), 7, dt));
    for (const Tensor& g : {k.grad(), v.grad(), q.grad()}) {
      std::vector<double> gv = vals(g);
      int nonzero = 0;
      for (int64_t s = t + 1; s < T; ++s)
        for (int64_t d = 0; d < Dh; ++d) nonzero += gv[size_t(s * Dh + d)] != 0.0;
      CAPTURE(dtype_name(dt));
      CHECK(nonzero == 0);
    }
  }
}

// Under autocast q, k and v are bf16 (the projections' outputs). Without a native bf16 GEMM (or
// with it switched off, or for an odd head dim) each work item widens its rows and runs the f32
// routine, so forward and backward are bitwise the f32 kernels on widened inputs (the backward's
// out being the rounded bf16 out it saved), rounded once.
TEST_CASE("attention on bf16, widened: bitwise the f32 kernels on widened inputs, rounded once") {
  Backend& be = backend_for(kCPU);
  const TensorOptions f32{DType::f32, kCPU, false};
  cpu::detail::gemm_set_native_bf16(false);
  // Two threads: [2, 8, ..] has heads enough (16 >= 4 per thread) for the forward's whole-head
  // items, the other shapes take one item per query block.
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(2);
  for (bool causal : {true, false}) {
    for (Shape s : {Shape{2, 3, 70, 16}, Shape{1, 2, 130, 5}, Shape{1, 1, 1, 8}, Shape{2, 8, 150, 12}}) {
      CAPTURE(causal);
      CAPTURE(shape_str(s));
      const double scale = 0.37;
      Tensor q = leaf_from(randn(s, 1).to(DType::bf16)), k = leaf_from(randn(s, 2).to(DType::bf16));
      Tensor v = leaf_from(randn(s, 3).to(DType::bf16).transpose(2, 3).contiguous().transpose(2, 3));
      Tensor out = scaled_dot_product_attention(q, k, v, causal, scale);
      CHECK(out.dtype() == DType::bf16);
      Tensor qf = q.detach().to(DType::f32), kf = k.detach().to(DType::f32), vf = v.detach().to(DType::f32).contiguous();
      Tensor of = Tensor::empty(s, f32), lse = Tensor::empty({s[0], s[1], s[2]}, f32);
      be.attention_forward(qf, kf, vf, scale, causal, of, lse);
      CHECK(vals(out) == vals(of.to(DType::bf16)));

      Tensor g = randn(s, 4).to(DType::bf16);
      out.backward(g);
      Tensor dq = Tensor::empty(s, f32), dk = Tensor::empty(s, f32), dv = Tensor::empty(s, f32);
      be.attention_backward(g.to(DType::f32), qf, kf, vf, out.detach().to(DType::f32), lse, scale, causal, dq, dk, dv);
      CHECK(q.grad().dtype() == DType::bf16);
      CHECK(vals(q.grad()) == vals(dq.to(DType::bf16)));
      CHECK(vals(k.grad()) == vals(dk.to(DType::bf16)));
      CHECK(vals(v.grad()) == vals(dv.to(DType::bf16)));
    }
  }
  omp_set_num_threads(saved_threads);
  cpu::detail::gemm_set_native_bf16(true);
  // Autocast lowers f32 inputs, as torch.autocast does for attention.
  Tensor a = randn({1, 2, 9, 8}, 5);
  AutocastGuard ac;
  Tensor y = scaled_dot_product_attention(a, a, a);
  CHECK(y.dtype() == DType::bf16);
  Tensor ab = a.to(DType::bf16);
  CHECK(vals(y) == vals(scaled_dot_product_attention(ab, ab, ab)));
}

namespace {

// f64 attention of the (bf16) values of q, k, v, with its backward for dout g given the saved out
// (D_i = g_i . out_i, as the kernels compute it), and per element the sums of |terms| that the
// bf16 kernels round: sum_j P_ij |v_jd| for out, sum_i P_ij |g_id| for dv, sum |dS| |q| and
// sum |dS| |k| for dk and dq. `noise` adds to the latter the scale of f32 cancellation in
// dP - D: sum P_ij scale (|g_i| . (|v_j| + |out_i|)) |q| (or |k|).
struct AttentionBound {
  std::vector<double> out, out_terms, dq, dq_terms, dq_noise, dk, dk_terms, dk_noise, dv, dv_terms;
};

AttentionBound attention_with_bounds(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& g,
                                     const Tensor& saved_out, bool causal, double scale) {
  const int64_t BH = q.size(0) * q.size(1), T = q.size(2), Dh = q.size(3);
  const std::vector<double> qv = vals(q), kv = vals(k), vv = vals(v), gv = vals(g), ov = vals(saved_out);
  AttentionBound r;
  for (auto* x : {&r.out, &r.out_terms, &r.dq, &r.dq_terms, &r.dq_noise, &r.dk, &r.dk_terms, &r.dk_noise, &r.dv,
                  &r.dv_terms})
    x->assign(qv.size(), 0.0);
  std::vector<double> P(size_t(T * T)), dS(size_t(T * T)), noise(size_t(T * T));
  for (int64_t bh = 0; bh < BH; ++bh) {
    const size_t h = size_t(bh * T * Dh);
    auto at = [&](const std::vector<double>& x, int64_t row, int64_t d) { return x[h + size_t(row * Dh + d)]; };
    for (int64_t i = 0; i < T; ++i) {
      double mx = -INFINITY;
      for (int64_t j = 0; j < T; ++j) {
        double s = -INFINITY;
        if (!causal || j <= i) {
          s = 0;
          for (int64_t d = 0; d < Dh; ++d) s += at(qv, i, d) * at(kv, j, d);
          s *= scale;
        }
        P[size_t(i * T + j)] = s;
        mx = std::max(mx, s);
      }
      double sum = 0;
      for (int64_t j = 0; j < T; ++j) sum += P[size_t(i * T + j)] = std::exp(P[size_t(i * T + j)] - mx);
      double D = 0;
      for (int64_t d = 0; d < Dh; ++d) D += at(gv, i, d) * at(ov, i, d);
      for (int64_t j = 0; j < T; ++j) {
        double& p = P[size_t(i * T + j)];
        p /= sum;
        double dp = 0, mag = 0;
        for (int64_t d = 0; d < Dh; ++d) {
          dp += at(gv, i, d) * at(vv, j, d);
          mag += std::abs(at(gv, i, d)) * (std::abs(at(vv, j, d)) + std::abs(at(ov, i, d)));
        }
        dS[size_t(i * T + j)] = p * (dp - D) * scale;
        noise[size_t(i * T + j)] = p * scale * mag;
      }
    }
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < T; ++j) {
        const double p = P[size_t(i * T + j)], ds = dS[size_t(i * T + j)], nz = noise[size_t(i * T + j)];
        for (int64_t d = 0; d < Dh; ++d) {
          const size_t oi = h + size_t(i * Dh + d), oj = h + size_t(j * Dh + d);
          r.out[oi] += p * vv[oj];
          r.out_terms[oi] += p * std::abs(vv[oj]);
          r.dv[oj] += p * gv[oi];
          r.dv_terms[oj] += p * std::abs(gv[oi]);
          r.dk[oj] += ds * qv[oi];
          r.dk_terms[oj] += std::abs(ds * qv[oi]);
          r.dk_noise[oj] += nz * std::abs(qv[oi]);
          r.dq[oi] += ds * kv[oj];
          r.dq_terms[oi] += std::abs(ds * kv[oj]);
          r.dq_noise[oi] += nz * std::abs(kv[oj]);
        }
      }
  }
  return r;
}

// Elements of got outside |got - ref| <= u (|ref| + terms) + 1e-5 (terms + noise), u = 2^-8 the
// unit roundoff of bf16: each rounded term and the final rounding cost at most u of their size;
// 1e-5 covers f32 arithmetic (exp2, lse, the sums of products).
int outside_bound(const Tensor& got, const std::vector<double>& ref, const std::vector<double>& terms,
                  const std::vector<double>* noise = nullptr) {
  const std::vector<double> gv = vals(got);
  const double u = std::ldexp(1.0, -8);
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double tol = u * (std::abs(ref[i]) + terms[i]) + 1e-5 * (terms[i] + (noise ? (*noise)[i] : 0.0));
    bad += !(std::abs(gv[i] - ref[i]) <= tol);
  }
  return bad;
}

}  // namespace

// With AVX512_BF16 the tile products take bf16 pairs, and P and dS are rounded to bf16 before
// their products (cpu/attention_bf16_dot.cpp): each result within bf16 rounding of the terms it
// sums, against f64 attention of the same bf16 values.
TEST_CASE("attention on bf16 pair products: within bf16 rounding of f64 attention") {
  if (!cpu::bf16gemm_native()) {
    MESSAGE("bf16 pair-product attention skipped: no native bf16 GEMM (AVX512_BF16) here");
    return;
  }
  const int saved_threads = omp_get_max_threads();
  omp_set_num_threads(2);
  for (bool causal : {true, false}) {
    // Ragged tiles and odd T (a padding query pair), Dh not a multiple of 16, T = 1, an odd Dh
    // (widened instead), whole-head forward items ([2, 8, ..] on two threads), Dh = 128.
    for (Shape s : {Shape{2, 3, 70, 16}, Shape{1, 2, 131, 6}, Shape{1, 1, 1, 8}, Shape{1, 1, 67, 5},
                    Shape{2, 8, 150, 12}, Shape{1, 2, 200, 64}, Shape{1, 1, 129, 128}}) {
      CAPTURE(causal);
      CAPTURE(shape_str(s));
      const double scale = 1.3 / std::sqrt(double(s[3]));
      Tensor q = leaf_from(randn(s, 1).to(DType::bf16)), k = leaf_from(randn(s, 2).to(DType::bf16));
      Tensor v = leaf_from(randn(s, 3).to(DType::bf16));
      Tensor out = scaled_dot_product_attention(q, k, v, causal, scale);
      Tensor g = randn(s, 4).to(DType::bf16);
      out.backward(g);
      const AttentionBound r = attention_with_bounds(q, k, v, g, out, causal, scale);
      CHECK(outside_bound(out, r.out, r.out_terms) == 0);
      CHECK(outside_bound(v.grad(), r.dv, r.dv_terms) == 0);
      CHECK(outside_bound(k.grad(), r.dk, r.dk_terms, &r.dk_noise) == 0);
      CHECK(outside_bound(q.grad(), r.dq, r.dq_terms, &r.dq_noise) == 0);
    }
  }
  // Rows at an odd bf16 offset cannot be read as 32-bit words in place and are copied: the same
  // results, bit for bit.
  const Shape s{1, 2, 70, 16};
  const int64_t n = 2 * 70 * 16;
  Backend& be = backend_for(kCPU);
  auto odd = [&](uint64_t seed) {
    Tensor base = randn({n + 1}, seed).to(DType::bf16);
    return base.narrow(0, 1, n).view(s);
  };
  Tensor q = odd(1), k = odd(2), v = odd(3);
  Tensor qa = q.contiguous().clone(), ka = k.contiguous().clone(), va = v.contiguous().clone();
  const TensorOptions bf{DType::bf16, kCPU, false}, f32{DType::f32, kCPU, false};
  Tensor o1 = Tensor::empty(s, bf), o2 = Tensor::empty(s, bf);
  Tensor l1 = Tensor::empty({1, 2, 70}, f32), l2 = Tensor::empty({1, 2, 70}, f32);
  be.attention_forward(q, k, v, 0.25, true, o1, l1);
  be.attention_forward(qa, ka, va, 0.25, true, o2, l2);
  CHECK(vals(o1) == vals(o2));
  CHECK(vals(l1) == vals(l2));
  omp_set_num_threads(saved_threads);
}

TEST_CASE("attention rejects mismatched shapes and dtypes") {
  Tensor a = randn({1, 2, 4, 8}, 1), b = randn({1, 2, 5, 8}, 2);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(a, b, a), doctest::Contains("scaled_dot_product_attention"), Error);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(a, a.to(DType::f64), a), doctest::Contains("dtype"), Error);
  CHECK_THROWS_WITH_AS(scaled_dot_product_attention(randn({2, 4, 8}, 1), randn({2, 4, 8}, 1), randn({2, 4, 8}, 1)),
                       doctest::Contains("[B, H, T, Dh]"), Error);
}
