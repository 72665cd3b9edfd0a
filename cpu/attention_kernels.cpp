// Fused scaled dot-product attention (flash-attention style) on the CPU.
//
// Forward: one work item per (batch*head, block of kTile queries), handed out dynamically, longest
// first. It streams over key blocks of kTile keys with an online softmax (running max and sum per
// query, unnormalised output tile), so the largest score buffer is kTile x kTile per thread, and
// writes out and the logsumexp (lse) of the scaled, masked scores.
// Backward: one work item per batch*head, so dq, dk and dv each have a single writer (no races, no
// atomics). For each key block it walks the query blocks that can see it, recomputes the
// probabilities from q, k and lse, and accumulates dv += P^T dO, dk += dS^T q and dq += dS k with
// dS = P * (dO v^T - D) * scale, D_i = rowsum(dO_i * out_i). Extra memory per thread: a few tiles
// plus O(T * Dh) rows of the head being processed; never O(T^2).
// Causal: key blocks entirely after a query block are skipped; in the diagonal block masked entries
// are set to exact zeros, so no position sees a later one, bit for bit.
// bf16 (autocast's q, k, v; lse stays f32): on CPUs with a native bf16 GEMM (AVX512_BF16) the
// tile products run on bf16 pairs, P and dS rounded to bf16 as torch.autocast's matmuls round them
// (cpu/attention_bf16_dot.cpp). Elsewhere, and for an odd head dim, each work item widens the rows
// it reads into per-thread f32 buffers (O(T * Dh), against the item's O(kTile * T * Dh) or
// O(T^2 * Dh) flops), runs the f32 routine on them and rounds its outputs once: bitwise the f32
// kernel on widened inputs, with no full-size f32 copy. The forward takes a whole head per item
// when there are heads enough for the threads, so a head's keys and values are widened once.
//
// The routines themselves are in cpu/attention_tiles.h, written once over the tile products.
// Score tiles are computed transposed, S^T = k q^T ([keys x queries]): k is used in place (no
// per-tile packing), and every per-query quantity (max, sum, rescale, lse, D) runs across vector
// lanes. Scores are in base 2 (times log2 e) so the softmax uses exp2. The f32/f64 tile products
// run on a small register-blocked kernel over GCC vector types; each routine is built three times
// (AVX-512, AVX2+FMA, baseline SSE2) with function target attributes and picked at run time, so
// the library needs no -march flag.
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/attention_tiles.h"
#include "cpu/bf16_math.h"
#include "cpu/cpu_backend.h"
#include "cpu/dispatch.h"

namespace mg::cpu {
namespace {

using namespace attn;

template <class T>
struct FwdArgs {
  const T *q, *k, *v;
  T *out, *lse;
  Geometry<T> g;
};

template <class T>
int64_t fwd_scratch(const Geometry<T>& g) {
  return forward_block_scratch(g) + FwdRows<T, 64>::scratch(g);
}

// One (batch*head, query block) item of the forward.
template <class T, int VB>
[[gnu::always_inline]] inline void forward_item(const FwdArgs<T>& a, int64_t bh, int64_t qb, T* ws) {
  const Geometry<T>& g = a.g;
  const int64_t base = bh * g.T_ * g.Dh;
  FwdRows<T, VB> prod(g, a.q + base, a.k + base, a.v + base, a.out + base, ws + forward_block_scratch(g));
  forward_block<T, VB>(g, prod, qb, a.lse + bh * g.T_, ws);
}

template <class T>
struct BwdArgs {
  const T *dout, *q, *k, *v, *out, *lse;
  T *dq, *dk, *dv;
  Geometry<T> g;
};

template <class T>
int64_t bwd_scratch(const Geometry<T>& g) {
  return backward_head_scratch(g) + BwdRows<T, 64>::scratch(g);
}

// One batch*head of the backward.
template <class T, int VB>
[[gnu::always_inline]] inline void backward_item(const BwdArgs<T>& a, int64_t bh, T* ws) {
  const Geometry<T>& g = a.g;
  const int64_t base = bh * g.T_ * g.Dh;
  BwdRows<T, VB> prod(g, a.dout + base, a.q + base, a.k + base, a.v + base, a.out + base, a.dq + base, a.dk + base,
                      a.dv + base, ws + backward_head_scratch(g));
  backward_head<T, VB>(g, prod, a.lse + bh * g.T_, ws);
}

// The three builds of each item routine, for f32 and f64. flatten pulls every helper into the
// target-specific body.
#define MG_ATTN_ISA(SUFFIX, VB, TARGET)                                                 \
  template <class T>                                                                    \
  TARGET __attribute__((flatten)) void forward_##SUFFIX(const FwdArgs<T>& a, int64_t bh, \
                                                       int64_t qb, T* ws) {            \
    forward_item<T, VB>(a, bh, qb, ws);                                                 \
  }                                                                                     \
  template <class T>                                                                    \
  TARGET __attribute__((flatten)) void backward_##SUFFIX(const BwdArgs<T>& a, int64_t bh, T* ws) { \
    backward_item<T, VB>(a, bh, ws);                                                    \
  }

#if defined(__x86_64__) && defined(__GNUC__)
MG_ATTN_ISA(avx512, 64, __attribute__((target("avx512f,fma"))))
MG_ATTN_ISA(avx2, 32, __attribute__((target("avx2,fma"))))
#endif
MG_ATTN_ISA(base, 16, )
#undef MG_ATTN_ISA

enum class Isa { base, avx2, avx512 };

// The CPU's best build; MG_GEMM_ISA=scalar|avx2|avx512 (the GEMM's test knob) caps it, so the
// tests can run every build on one machine.
Isa detect_isa() {
  Isa best = Isa::base;
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f")) best = Isa::avx512;
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = Isa::avx2;
#endif
  const char* env = std::getenv("MG_GEMM_ISA");
  const std::string want = env ? env : "";
  if (want == "scalar") return Isa::base;
  if (want == "avx2" && best == Isa::avx512) return Isa::avx2;
  return best;
}

Isa active_isa() {
  static const Isa isa = detect_isa();
  return isa;
}

// The item routines of one build.
template <class T>
struct Kernels {
  void (*forward)(const FwdArgs<T>&, int64_t, int64_t, T*);
  void (*backward)(const BwdArgs<T>&, int64_t, T*);
};

// The build for the CPU's ISA (see detect_isa).
template <class T>
Kernels<T> kernels_for_isa() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (active_isa() == Isa::avx512) return {&forward_avx512<T>, &backward_avx512<T>};
  if (active_isa() == Isa::avx2) return {&forward_avx2<T>, &backward_avx2<T>};
#endif
  return {&forward_base<T>, &backward_base<T>};
}

void widen_rows(const bf16* src, int64_t n, float* dst) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] = widen(src[i]);
}
void narrow_rows(const float* src, int64_t n, bf16* dst) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] = narrow<bf16>(src[i]);
}

void attention_forward_bf16(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                            const Tensor& out, const Tensor& lse) {
  const int64_t BH = q.size(0) * q.size(1);
  const Geometry<float> g = geometry<float>(q, scale, causal);
  const int64_t T_ = g.T_, Dh = g.Dh, nq = g.nblocks, items = BH * nq, head = T_ * Dh;
  const bf16 *qp = ptr<bf16>(q), *kp = ptr<bf16>(k), *vp = ptr<bf16>(v);
  bf16* op = ptr<bf16>(out);
  float* lp = ptr<float>(lse);
  const auto fn = kernels_for_isa<float>().forward;
  const int64_t base_ws = fwd_scratch(g);
  // One query block of head bh; its key and value rows [0, keys) must be widened in kf, vf.
  auto block = [&](int64_t bh, int64_t qb, float* ws) {
    const int64_t off = bh * head, i0 = qb * kTile, m = std::min(kTile, T_ - i0);
    float *qf = ws + base_ws, *kf = qf + head, *vf = kf + head, *of = vf + head;
    widen_rows(qp + off + i0 * Dh, m * Dh, qf + i0 * Dh);
    // As one head at bh 0: the routine addresses rows from the head's start.
    const FwdArgs<float> a{qf, kf, vf, of, lp + bh * T_, g};
    fn(a, 0, qb, ws);
    narrow_rows(of + i0 * Dh, m * Dh, op + off + i0 * Dh);
  };
  if (whole_head_items(BH)) {
    // A head's keys and values are widened once for all its query blocks (per block, late blocks
    // would widen the same rows again: about T / 128 times over).
    run_items<float>(BH, base_ws + 4 * head, use_threads(q, BH), [&](int64_t bh, float* ws) {
      float* kf = ws + base_ws + head;
      widen_rows(kp + bh * head, head, kf);
      widen_rows(vp + bh * head, head, kf + head);
      for (int64_t qb = nq - 1; qb >= 0; --qb) block(bh, qb, ws);
    });
    return;
  }
  run_items<float>(items, base_ws + 4 * head, use_threads(q, items), [&](int64_t it, float* ws) {
    const int64_t bh = it % BH, qb = nq - 1 - it / BH, off = bh * head;
    const int64_t i0 = qb * kTile, m = std::min(kTile, T_ - i0);
    const int64_t keys = causal ? i0 + m : T_;  // the key rows this query block reads
    float* kf = ws + base_ws + head;
    widen_rows(kp + off, keys * Dh, kf);
    widen_rows(vp + off, keys * Dh, kf + head);
    block(bh, qb, ws);
  });
}

void attention_backward_bf16(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                             const Tensor& out, const Tensor& lse, double scale, bool causal, const Tensor& dq,
                             const Tensor& dk, const Tensor& dv) {
  const int64_t BH = q.size(0) * q.size(1);
  const Geometry<float> g = geometry<float>(q, scale, causal);
  const int64_t T_ = g.T_, Dh = g.Dh, head = T_ * Dh;
  const bf16 *dop = ptr<bf16>(dout), *qp = ptr<bf16>(q), *kp = ptr<bf16>(k), *vp = ptr<bf16>(v),
             *outp = ptr<bf16>(out);
  bf16 *dqp = ptr<bf16>(dq), *dkp = ptr<bf16>(dk), *dvp = ptr<bf16>(dv);
  const float* lp = ptr<float>(lse);
  const auto fn = kernels_for_isa<float>().backward;
  const int64_t base_ws = bwd_scratch(g);
  const bool par = use_threads(q, BH);
  run_items<float>(BH, base_ws + 8 * head, par, [&](int64_t bh, float* ws) {
    const int64_t off = bh * head;
    float* f[8];
    for (int i = 0; i < 8; ++i) f[i] = ws + base_ws + i * head;
    widen_rows(dop + off, head, f[0]);
    widen_rows(qp + off, head, f[1]);
    widen_rows(kp + off, head, f[2]);
    widen_rows(vp + off, head, f[3]);
    widen_rows(outp + off, head, f[4]);
    const BwdArgs<float> a{f[0], f[1], f[2], f[3], f[4], lp + bh * T_, f[5], f[6], f[7], g};
    fn(a, 0, ws);
    narrow_rows(f[5], head, dqp + off);
    narrow_rows(f[6], head, dkp + off);
    narrow_rows(f[7], head, dvp + off);
  });
}

}  // namespace

void CpuBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                                   const Tensor& out, const Tensor& lse) {
  MG_CHECK(q.dim() == 4, "cpu attention_forward: expected q [B, H, T, Dh], got ", q.desc());
  const int64_t BH = q.size(0) * q.size(1);
  if (q.numel() == 0) return;
  if (q.dtype() == DType::bf16) {
    if (!attn::bf16_dot_forward(q, k, v, scale, causal, out, lse)) attention_forward_bf16(q, k, v, scale, causal, out, lse);
    return;
  }
  dispatch_float(q.dtype(), "attention_forward", [&](auto tag) {
    using T = decltype(tag);
    const FwdArgs<T> a{ptr<T>(q), ptr<T>(k), ptr<T>(v), ptr<T>(out), ptr<T>(lse), geometry<T>(q, scale, causal)};
    const auto fn = kernels_for_isa<T>().forward;
    const int64_t nq = a.g.nblocks, items = BH * nq;
    if (whole_head_items(BH)) {
      run_items<T>(BH, fwd_scratch(a.g), use_threads(q, BH), [&](int64_t bh, T* ws) {
        for (int64_t qb = nq - 1; qb >= 0; --qb) fn(a, bh, qb, ws);
      });
      return;
    }
    // Longest items first (causal: late query blocks see the most keys).
    run_items<T>(items, fwd_scratch(a.g), use_threads(q, items),
                 [&](int64_t it, T* ws) { fn(a, it % BH, nq - 1 - it / BH, ws); });
  });
}

void CpuBackend::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& out, const Tensor& lse, double scale, bool causal, const Tensor& dq,
                                    const Tensor& dk, const Tensor& dv) {
  MG_CHECK(q.dim() == 4, "cpu attention_backward: expected q [B, H, T, Dh], got ", q.desc());
  const int64_t BH = q.size(0) * q.size(1);
  if (q.numel() == 0) return;
  if (q.dtype() == DType::bf16) {
    if (!attn::bf16_dot_backward(dout, q, k, v, out, lse, scale, causal, dq, dk, dv))
      attention_backward_bf16(dout, q, k, v, out, lse, scale, causal, dq, dk, dv);
    return;
  }
  dispatch_float(q.dtype(), "attention_backward", [&](auto tag) {
    using T = decltype(tag);
    const BwdArgs<T> a{ptr<T>(dout), ptr<T>(q), ptr<T>(k),  ptr<T>(v),  ptr<T>(out),
                       ptr<T>(lse),  ptr<T>(dq), ptr<T>(dk), ptr<T>(dv), geometry<T>(q, scale, causal)};
    const auto fn = kernels_for_isa<T>().backward;
    const bool par = use_threads(q, BH);
    run_items<T>(BH, bwd_scratch(a.g), par, [&](int64_t bh, T* ws) { fn(a, bh, ws); });
  });
}

}  // namespace mg::cpu
