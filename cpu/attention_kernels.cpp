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
// bf16 (autocast's q, k, v; lse stays f32): each work item widens the rows it reads into per-thread
// f32 buffers (O(T * Dh), against the item's O(kTile * T * Dh) or O(T^2 * Dh) flops), runs the f32
// routine on them and rounds its outputs once. So the results are bitwise those of the f32 kernel
// on widened inputs, and no full-size f32 copy is ever made. The forward takes a whole head per
// item when there are heads enough for the threads, so a head's keys and values are widened once.
//
// Score tiles are computed transposed, S^T = k q^T ([keys x queries]): k is used in place (no
// per-tile packing), and every per-query quantity (max, sum, rescale, lse, D) runs across vector
// lanes. Scores are in base 2 (times log2 e) so the softmax uses exp2. Tile products run on a small
// register-blocked kernel over GCC vector types; each routine is built three times (AVX-512,
// AVX2+FMA, baseline SSE2) with function target attributes and picked at run time, so the library
// needs no -march flag.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "cpu/bf16_math.h"
#include "cpu/cpu_backend.h"
#include "cpu/dispatch.h"

// The vector helpers below take and return GCC vector types by value; they are always inlined into
// one target-specific caller, so the ABI note about passing wide vectors does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace mg::cpu {
namespace {

constexpr int64_t kTile = 64;  // query rows per query block and keys per key block
constexpr int64_t kRowPad = 8;  // tile rows are padded to a multiple of this (the register block)
constexpr double kLog2e = 1.4426950408889634;
constexpr double kLn2 = 0.6931471805599453;

inline int64_t round_up(int64_t a, int64_t b) { return (a + b - 1) / b * b; }

// VB-byte SIMD vectors of T (VB = 64: zmm, 32: ymm, 16: xmm).
template <class T, int VB>
struct Vec {
  typedef T type __attribute__((vector_size(VB)));
  typedef int32_t itype __attribute__((vector_size(VB)));
  static constexpr int W = VB / int(sizeof(T));
};

template <class V, class T>
[[gnu::always_inline]] inline V vload(const T* p) {
  V v;
  __builtin_memcpy(&v, p, sizeof(V));
  return v;
}
template <class V, class T>
[[gnu::always_inline]] inline void vstore(T* p, V v) {
  __builtin_memcpy(p, &v, sizeof(V));
}

// 2^x for f32 lanes: x = n + f, f in [-1/2, 1/2], 2^f by its degree-7 Taylor polynomial (relative
// error < 1e-7), 2^n added to the exponent bits. Lanes below -126 (masked scores are -inf) give 0.
template <int VB>
[[gnu::always_inline]] inline typename Vec<float, VB>::type exp2_lanes(typename Vec<float, VB>::type x) {
  using V = typename Vec<float, VB>::type;
  using VI = typename Vec<float, VB>::itype;
  const V lo = V{} - 126.0f;
  const V xc = x < lo ? lo : x;
  const V r = (xc + 12582912.0f) - 12582912.0f;  // round to nearest integer (|x| < 2^22)
  const V f = xc - r;
  V p = V{} + 1.525273380405984e-05f;
  p = p * f + 1.5403530393381608e-04f;
  p = p * f + 1.3333558146428443e-03f;
  p = p * f + 9.618129107628477e-03f;
  p = p * f + 5.550410866482158e-02f;
  p = p * f + 2.402265069591007e-01f;
  p = p * f + 6.931471805599453e-01f;
  p = p * f + 1.0f;
  const VI bits = (VI)p + (__builtin_convertvector(r, VI) << 23);
  return x < lo ? V{} : (V)bits;
}

// x[i] = 2^(x[i] * a - sub[i]) for first <= i < n and exactly 0 for i < first, whatever x held
// there (masked scores may be garbage). With kSum, adds the results into sum[i]. n is a multiple
// of the vector width.
template <class T, int VB, bool kSum>
[[gnu::always_inline]] inline void exp2_span(T* x, int64_t n, int64_t first, T a, const T* sub, T* sum) {
  using V = typename Vec<T, VB>::type;
  constexpr int W = Vec<T, VB>::W;
  if constexpr (std::is_same_v<T, float>) {
    using VI = typename Vec<T, VB>::itype;
    VI lane;
    for (int w = 0; w < W; ++w) lane[w] = w;
    for (int64_t i = 0; i < n; i += W) {
      const VI from = VI{} + int32_t(std::clamp<int64_t>(first - i, 0, W));
      const V e = lane >= from ? exp2_lanes<VB>(vload<V>(x + i) * a - vload<V>(sub + i)) : V{};
      vstore(x + i, e);
      if constexpr (kSum) vstore(sum + i, vload<V>(sum + i) + e);
    }
  } else {  // f64 (tests and audits): the library's exact exp2
    for (int64_t i = 0; i < n; ++i) {
      x[i] = i >= first ? std::exp2(x[i] * a - sub[i]) : T(0);
      if constexpr (kSum) sum[i] += x[i];
    }
  }
}

// Register tile: C[R x CN*W] (+)= A[R x K] * B[K x CN*W], A element (r, k) at A[r*ars + k*aks]
// (so a transposed operand needs no copy), B and C row-major.
template <class T, int VB, int R, int CN>
[[gnu::always_inline]] inline void micro_tile(int64_t K, const T* A, int64_t ars, int64_t aks, const T* B,
                                              int64_t ldb, T* C, int64_t ldc, bool accumulate) {
  using V = typename Vec<T, VB>::type;
  constexpr int W = Vec<T, VB>::W;
  V c[R][CN];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < CN; ++j) c[r][j] = accumulate ? vload<V>(C + r * ldc + j * W) : V{};
  for (int64_t k = 0; k < K; ++k) {
    V b[CN];
#pragma GCC unroll 4
    for (int j = 0; j < CN; ++j) b[j] = vload<V>(B + k * ldb + j * W);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const T a = A[r * ars + k * aks];  // scalar * vector splats without an add
#pragma GCC unroll 4
      for (int j = 0; j < CN; ++j) c[r][j] += a * b[j];
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < CN; ++j) vstore(C + r * ldc + j * W, c[r][j]);
}

// Rows per register tile for CN vectors of columns: ~24 accumulators of 32 registers (AVX-512),
// ~8 of 16 otherwise; always a divisor of kRowPad.
template <int VB>
constexpr int rows_for(int cn) {
  if constexpr (VB == 64) return cn == 4 ? 4 : 8;
  else return cn >= 3 ? 2 : cn == 2 ? 4 : 8;
}

template <class T, int VB, int CN>
[[gnu::always_inline]] inline void tile_columns(int64_t M, int64_t K, const T* A, int64_t ars, int64_t aks,
                                                const T* B, int64_t ldb, T* C, int64_t ldc, bool acc) {
  constexpr int R = rows_for<VB>(CN);
  for (int64_t i = 0; i < M; i += R) micro_tile<T, VB, R, CN>(K, A + i * ars, ars, aks, B, ldb, C + i * ldc, ldc, acc);
}

// C[M x N] (+)= A[M x K] * B[K x N] on tiles: M a multiple of kRowPad, N a multiple of the vector
// width. K == 0 with !acc writes zeros.
template <class T, int VB>
[[gnu::always_inline]] inline void tile_gemm(int64_t M, int64_t N, int64_t K, const T* A, int64_t ars, int64_t aks,
                                             const T* B, int64_t ldb, T* C, int64_t ldc, bool acc) {
  constexpr int W = Vec<T, VB>::W;
  for (int64_t j = 0; j < N; j += 4 * W) {
    switch (std::min<int64_t>(4, (N - j) / W)) {
      case 4: tile_columns<T, VB, 4>(M, K, A, ars, aks, B + j, ldb, C + j, ldc, acc); break;
      case 3: tile_columns<T, VB, 3>(M, K, A, ars, aks, B + j, ldb, C + j, ldc, acc); break;
      case 2: tile_columns<T, VB, 2>(M, K, A, ars, aks, B + j, ldb, C + j, ldc, acc); break;
      default: tile_columns<T, VB, 1>(M, K, A, ars, aks, B + j, ldb, C + j, ldc, acc); break;
    }
  }
}

// Problem geometry shared by forward and backward. Tensors are contiguous [BH, T, Dh].
template <class T>
struct Geometry {
  int64_t T_, Dh, Dp;  // Dp: Dh padded to the widest vector (row length of output tiles)
  int64_t nblocks;     // ceil(T / kTile)
  T scale;             // softmax scale
  T c;                 // scale * log2(e): scores in base 2
  bool causal;
  // First query column i (0..kTile) of query block i0 that key j0 + j may be seen by; kTile when
  // none (also for padding keys j >= n).
  int64_t first_query(int64_t j, int64_t j0, int64_t i0, int64_t n) const {
    if (j >= n) return kTile;
    return causal ? std::clamp<int64_t>(j0 + j - i0, 0, kTile) : 0;
  }
};

// dst[r * ld + d] = s * src[r * Dh + d] for r < rows, d < Dh; zero elsewhere in [rows_pad x ld].
template <class T>
void pack_rows(const T* src, int64_t rows, int64_t rows_pad, int64_t Dh, int64_t ld, T s, T* dst) {
  for (int64_t r = 0; r < rows_pad; ++r) {
    T* d = dst + r * ld;
    if (r < rows) {
      for (int64_t j = 0; j < Dh; ++j) d[j] = s * src[r * Dh + j];
      std::fill(d + Dh, d + ld, T(0));
    } else {
      std::fill(d, d + ld, T(0));
    }
  }
}

// dst[d * ld + i] = s * src[i * Dh + d] for i < rows; zero for rows <= i < cols.
template <class T>
void pack_transposed(const T* src, int64_t rows, int64_t cols, int64_t Dh, int64_t ld, T s, T* dst) {
  for (int64_t d = 0; d < Dh; ++d) std::fill(dst + d * ld + rows, dst + d * ld + cols, T(0));
  for (int64_t i0 = 0; i0 < rows; i0 += 16) {  // 16 rows at a time keeps the reads in cache lines
    const int64_t i1 = std::min(rows, i0 + 16);
    for (int64_t d = 0; d < Dh; ++d)
      for (int64_t i = i0; i < i1; ++i) dst[d * ld + i] = s * src[i * Dh + d];
  }
}

// A block of n rows of a [.., Dh] tensor as a tile operand: in place when its rows already have
// the layout the caller needs (ld == Dh, enough readable rows), else a zero-padded copy in buf.
template <class T>
const T* rows_operand(const T* src, int64_t n, int64_t rows_needed, int64_t Dh, int64_t ld, T* buf) {
  if (ld == Dh && rows_needed <= n) return src;
  pack_rows(src, n, rows_needed, Dh, ld, T(1), buf);
  return buf;
}

template <class T>
struct FwdArgs {
  const T *q, *k, *v;
  T *out, *lse;
  Geometry<T> g;
};

// Scratch per thread, in elements of T.
template <class T>
int64_t fwd_scratch(const Geometry<T>& g) {
  return g.Dh * kTile + kTile * g.Dh + 2 * kTile * g.Dp + kTile * kTile + 4 * kTile;
}

// One (batch*head, query block) item of the forward. Scores are computed transposed, S^T = k q^T
// ([keys x queries]), so k is used in place and every per-query quantity (max, sum, rescale)
// runs across vector lanes.
template <class T, int VB>
[[gnu::always_inline]] inline void forward_item(const FwdArgs<T>& a, int64_t bh, int64_t qb, T* ws) {
  using V = typename Vec<T, VB>::type;
  constexpr int W = Vec<T, VB>::W;
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const Geometry<T>& g = a.g;
  const int64_t Dh = g.Dh, Dp = g.Dp, base = bh * g.T_ * Dh;
  const int64_t i0 = qb * kTile, m = std::min(kTile, g.T_ - i0), mp = round_up(m, kRowPad);
  T* QT = ws;                  // [Dh x kTile] q^T, pre-scaled by c, padding columns zero
  T* Kb = QT + Dh * kTile;     // [kTile x Dh] ragged key block, zero padded
  T* Vb = Kb + kTile * Dh;     // [kTile x Dp] value block when it needs padding
  T* O = Vb + kTile * Dp;      // [kTile x Dp] unnormalised output
  T* ST = O + kTile * Dp;      // [kTile x kTile] transposed scores, then probabilities
  T* rmax = ST + kTile * kTile;  // running max per query (base 2)
  T* rsum = rmax + kTile;        // running sum per query
  T* mx = rsum + kTile;          // this block's new max
  T* alpha = mx + kTile;         // rescale of the old sum and output

  pack_transposed(a.q + base + i0 * Dh, m, kTile, Dh, kTile, g.c, QT);
  std::fill(O, O + mp * Dp, T(0));
  std::fill(rmax, rmax + kTile, kNegInf);
  std::fill(rsum, rsum + kTile, T(0));

  const int64_t kb_end = g.causal ? qb + 1 : g.nblocks;
  for (int64_t kb = 0; kb < kb_end; ++kb) {
    const int64_t j0 = kb * kTile, n = std::min(kTile, g.T_ - j0), np = round_up(n, kRowPad);
    const T* K = rows_operand(a.k + base + j0 * Dh, n, np, Dh, Dh, Kb);
    const T* Vr = rows_operand(a.v + base + j0 * Dh, n, n, Dh, Dp, Vb);
    tile_gemm<T, VB>(np, kTile, Dh, K, Dh, 1, QT, kTile, ST, kTile, false);
    for (int64_t j = 0; j < np; ++j) {  // mask: keys after the query, padding keys
      const int64_t first = g.first_query(j, j0, i0, n);
      std::fill(ST + j * kTile, ST + j * kTile + first, kNegInf);
    }
    for (int64_t i = 0; i < kTile; i += W) {
      V v = vload<V>(rmax + i);
      for (int64_t j = 0; j < np; ++j) {
        const V s = vload<V>(ST + j * kTile + i);
        v = s > v ? s : v;
      }
      vstore(mx + i, v);
    }
    for (int64_t i = 0; i < kTile; ++i) {
      // A query with no visible key yet keeps max -inf; exponents then use 0 so masked entries
      // still give exactly 0 and nothing turns NaN.
      const T base2 = mx[i] == kNegInf ? T(0) : mx[i];
      alpha[i] = std::exp2(rmax[i] - base2);
      rmax[i] = mx[i];
      mx[i] = base2;
      rsum[i] *= alpha[i];
    }
    for (int64_t j = 0; j < np; ++j) exp2_span<T, VB, true>(ST + j * kTile, kTile, 0, T(1), mx, rsum);
    for (int64_t i = 0; i < mp; ++i) {
      if (alpha[i] == T(1)) continue;
      T* o = O + i * Dp;
      for (int64_t d = 0; d < Dp; d += W) vstore(o + d, vload<V>(o + d) * alpha[i]);
    }
    tile_gemm<T, VB>(mp, Dp, n, ST, 1, kTile, Vr, Dp, O, Dp, true);  // O += P v (P = S^T transposed)
  }
  T* out = a.out + base + i0 * Dh;
  T* lse = a.lse + bh * g.T_ + i0;
  for (int64_t i = 0; i < m; ++i) {
    const T inv = T(1) / rsum[i];
    for (int64_t d = 0; d < Dh; ++d) out[i * Dh + d] = O[i * Dp + d] * inv;
    lse[i] = T((double(rmax[i]) + std::log2(double(rsum[i]))) * kLn2);
  }
}

template <class T>
struct BwdArgs {
  const T *dout, *q, *k, *v, *out, *lse;
  T *dq, *dk, *dv;
  Geometry<T> g;
};

template <class T>
int64_t bwd_scratch(const Geometry<T>& g) {
  const int64_t tp = g.nblocks * kTile;
  return 2 * g.Dh * tp + 3 * tp * g.Dp + 2 * tp + 2 * kTile * g.Dh + 3 * kTile * g.Dp + 2 * kTile * kTile;
}

// One batch*head of the backward: dq, dk, dv of that head, written by this call alone. Tiles are
// transposed as in the forward: S^T = k q^T, dP^T = v dO^T, dS^T = P^T (dP^T - D) * scale.
template <class T, int VB>
[[gnu::always_inline]] inline void backward_item(const BwdArgs<T>& a, int64_t bh, T* ws) {
  using V = typename Vec<T, VB>::type;
  constexpr int W = Vec<T, VB>::W;
  const Geometry<T>& g = a.g;
  const int64_t T_ = g.T_, Dh = g.Dh, Dp = g.Dp, base = bh * T_ * Dh, tp = g.nblocks * kTile;
  // q^T and dout^T per query block, [nblocks][Dh x kTile]: a block's rows are kTile apart. One
  // [Dh x tp] matrix would put them tp apart, and at tp = 512 (a 2 KiB stride) the Dh rows a tile
  // product walks fall into two groups of L1 sets and miss on every row.
  T* QT = ws;                 // [nblocks][Dh x kTile] q^T
  T* dOT = QT + Dh * tp;      // [nblocks][Dh x kTile] dout^T
  T* Qr = dOT + Dh * tp;      // [tp x Dp] q rows, when padding is needed
  T* dOr = Qr + tp * Dp;      // [tp x Dp] dout rows, when padding is needed
  T* dQ = dOr + tp * Dp;      // [tp x Dp] dq accumulator
  T* Drow = dQ + tp * Dp;     // [tp] rowsum(dout * out)
  T* lse2 = Drow + tp;        // [tp] lse in base 2; +inf on padding queries (P = 0 there)
  T* Kb = lse2 + tp;          // [kTile x Dh] ragged key block
  T* Vb = Kb + kTile * Dh;    // [kTile x Dh] ragged value block
  T* Kr = Vb + kTile * Dh;    // [kTile x Dp] key rows, when padding is needed
  T* dK = Kr + kTile * Dp;    // [kTile x Dp]
  T* dV = dK + kTile * Dp;    // [kTile x Dp]
  T* PT = dV + kTile * Dp;    // [kTile x kTile] P^T
  T* dST = PT + kTile * kTile;  // [kTile x kTile] dP^T, then dS^T

  for (int64_t qb = 0; qb < g.nblocks; ++qb) {
    const int64_t i0 = qb * kTile, m = std::min(kTile, T_ - i0);
    pack_transposed(a.q + base + i0 * Dh, m, kTile, Dh, kTile, T(1), QT + qb * Dh * kTile);
    pack_transposed(a.dout + base + i0 * Dh, m, kTile, Dh, kTile, T(1), dOT + qb * Dh * kTile);
  }
  const T* Q = rows_operand(a.q + base, T_, T_, Dh, Dp, Qr);
  const T* dO = rows_operand(a.dout + base, T_, T_, Dh, Dp, dOr);
  std::fill(dQ, dQ + tp * Dp, T(0));
  for (int64_t i = 0; i < tp; ++i) {
    // D_i in W lanes, then the lanes in order: a scalar sum would be one dependent chain of Dh
    // multiply-adds per row (T * Dh per head, several percent of the backward).
    T s = 0;
    if (i < T_) {
      const T *o = a.out + base + i * Dh, *d = a.dout + base + i * Dh;
      V acc = V{};
      int64_t j = 0;
      for (; j + W <= Dh; j += W) acc += vload<V>(o + j) * vload<V>(d + j);
      for (int w = 0; w < W; ++w) s += acc[w];
      for (; j < Dh; ++j) s += o[j] * d[j];
    }
    Drow[i] = s;
    lse2[i] = i < T_ ? a.lse[bh * T_ + i] * T(kLog2e) : std::numeric_limits<T>::infinity();
  }
  const V vscale = V{} + g.scale;

  for (int64_t kb = 0; kb < g.nblocks; ++kb) {
    const int64_t j0 = kb * kTile, n = std::min(kTile, T_ - j0), np = round_up(n, kRowPad);
    const T* K = rows_operand(a.k + base + j0 * Dh, n, np, Dh, Dh, Kb);
    const T* Vv = rows_operand(a.v + base + j0 * Dh, n, np, Dh, Dh, Vb);
    const T* Krows = rows_operand(a.k + base + j0 * Dh, n, n, Dh, Dp, Kr);
    std::fill(dK, dK + np * Dp, T(0));
    std::fill(dV, dV + np * Dp, T(0));
    for (int64_t qb = g.causal ? kb : 0; qb < g.nblocks; ++qb) {
      const int64_t i0 = qb * kTile, m = std::min(kTile, T_ - i0), mp = round_up(m, kRowPad);
      const T* qt = QT + qb * Dh * kTile;
      const T* dot = dOT + qb * Dh * kTile;
      tile_gemm<T, VB>(np, kTile, Dh, K, Dh, 1, qt, kTile, PT, kTile, false);     // S^T = k q^T
      tile_gemm<T, VB>(np, kTile, Dh, Vv, Dh, 1, dot, kTile, dST, kTile, false);  // dP^T = v dO^T
      for (int64_t j = 0; j < np; ++j) {
        T* p = PT + j * kTile;
        T* ds = dST + j * kTile;
        exp2_span<T, VB, false>(p, kTile, g.first_query(j, j0, i0, n), g.c, lse2 + i0, nullptr);
        for (int64_t i = 0; i < kTile; i += W)
          vstore(ds + i, vload<V>(p + i) * (vload<V>(ds + i) - vload<V>(Drow + i0 + i)) * vscale);
      }
      tile_gemm<T, VB>(np, Dp, m, PT, kTile, 1, dO + i0 * Dp, Dp, dV, Dp, true);   // dV += P^T dO
      tile_gemm<T, VB>(np, Dp, m, dST, kTile, 1, Q + i0 * Dp, Dp, dK, Dp, true);   // dK += dS^T q
      tile_gemm<T, VB>(mp, Dp, n, dST, 1, kTile, Krows, Dp, dQ + i0 * Dp, Dp, true);  // dQ += dS k
    }
    for (int64_t j = 0; j < n; ++j) {
      std::memcpy(a.dk + base + (j0 + j) * Dh, dK + j * Dp, size_t(Dh) * sizeof(T));
      std::memcpy(a.dv + base + (j0 + j) * Dh, dV + j * Dp, size_t(Dh) * sizeof(T));
    }
  }
  for (int64_t i = 0; i < T_; ++i) std::memcpy(a.dq + base + i * Dh, dQ + i * Dp, size_t(Dh) * sizeof(T));
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

// item(i, ws) for every i in [0, items), handed out to the threads one at a time (items differ in
// cost), ws a scratch buffer of `scratch` elements per thread. Threads only when par.
template <class T, class F>
void run_items(int64_t items, int64_t scratch, bool par, const F& item) {
#pragma omp parallel if (par)
  {
    std::vector<T> ws(static_cast<size_t>(scratch));
#pragma omp for schedule(dynamic, 1)
    for (int64_t it = 0; it < items; ++it) item(it, ws.data());
  }
}

template <class T>
Geometry<T> geometry(const Tensor& q, double scale, bool causal) {
  Geometry<T> g;
  g.T_ = q.size(2);
  g.Dh = q.size(3);
  const int64_t w = 64 / int64_t(sizeof(T));  // pad to the widest vector so every build fits
  g.Dp = round_up(g.Dh, w);
  g.nblocks = (g.T_ + kTile - 1) / kTile;
  g.scale = T(scale);
  g.c = T(scale * kLog2e);
  g.causal = causal;
  return g;
}

// Whether `items` work items over q run on a thread team: a team costs more than a tiny
// problem's work (q.numel() * T ~ flops / 2).
bool use_threads(const Tensor& q, int64_t items) { return items > 1 && q.numel() * q.size(2) >= (int64_t(1) << 18); }

// Whether the forward's work items are whole heads (all query blocks of one batch*head, so its
// keys and values stay in one core's L2, and bf16 ones are widened once) rather than one query
// block each: when there are at least 4 heads per thread to balance the team.
bool whole_head_items(int64_t BH) {
  const int nth = omp_in_parallel() ? 1 : omp_get_max_threads();
  return BH >= 4 * int64_t(nth);
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
  if (q.dtype() == DType::bf16) return attention_forward_bf16(q, k, v, scale, causal, out, lse);
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
  if (q.dtype() == DType::bf16) return attention_backward_bf16(dout, q, k, v, out, lse, scale, causal, dq, dk, dv);
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
