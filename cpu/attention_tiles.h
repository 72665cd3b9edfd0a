#pragma once
// Internal to cpu/attention_*.cpp: the tiled flash-attention routines (cpu/attention_kernels.cpp
// has the algorithm's description), written once over the tile products they need.
//
// forward_block and backward_head hold the algorithm: the online softmax, the causal mask, the
// probabilities and dS = P * (dP - D) * scale, all in T (f32 for bf16 inputs). A policy object
// supplies the tile products and the reads and writes of the tensors:
//   - FwdRows / BwdRows (below): f32 and f64 rows, products on f32/f64 FMA register tiles;
//   - the bf16 policies of cpu/attention_bf16_dot.cpp: bf16 rows, products on AVX512_BF16 pairs.
// Everything here is always inlined into one target-specific caller (a build per ISA), so the
// templates carry no target of their own.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include <omp.h>

#include "core/tensor.h"

// The vector helpers take and return GCC vector types by value; they are always inlined into one
// target-specific caller, so the ABI note about passing wide vectors does not apply.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"

namespace mg::cpu::attn {

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


// Scratch of forward_block itself, in elements of T (a policy adds its own).
template <class T>
int64_t forward_block_scratch(const Geometry<T>& g) {
  return kTile * g.Dp + kTile * kTile + 4 * kTile;
}

// One (head, query block) of the forward: out rows [i0, i0 + m) through prod.store_row and their
// logsumexp into lse (the head's [T] row). Scores are computed transposed, S^T = k q^T
// ([keys x queries]), so every per-query quantity (max, sum, rescale) runs across vector lanes.
// The policy:
//   query_block(i0, m)            prepares the block's queries for scores();
//   scores(j0, n, np, ST)         ST[np x kTile] = S^T of keys [j0, j0 + n) (rows >= n: anything
//                                 finite), times score_scale() giving the base-2 scores;
//   add_pv(j0, n, np, mp, ST, O)  O[mp x Dp] += P v with P^T in ST (rows >= n hold zeros);
//   store_row(i, o, inv)          out row i = o[0, Dh) * inv.
template <class T, int VB, class Prod>
[[gnu::always_inline]] inline void forward_block(const Geometry<T>& g, Prod& prod, int64_t qb, T* lse, T* ws) {
  using V = typename Vec<T, VB>::type;
  constexpr int W = Vec<T, VB>::W;
  constexpr T kNegInf = -std::numeric_limits<T>::infinity();
  const int64_t Dp = g.Dp;
  const int64_t i0 = qb * kTile, m = std::min(kTile, g.T_ - i0), mp = round_up(m, kRowPad);
  T* O = ws;                     // [kTile x Dp] unnormalised output
  T* ST = O + kTile * Dp;        // [kTile x kTile] transposed scores, then probabilities
  T* rmax = ST + kTile * kTile;  // running max per query (base 2)
  T* rsum = rmax + kTile;        // running sum per query
  T* mx = rsum + kTile;          // this block's new max
  T* alpha = mx + kTile;         // rescale of the old sum and output

  prod.query_block(i0, m);
  std::fill(O, O + mp * Dp, T(0));
  std::fill(rmax, rmax + kTile, kNegInf);
  std::fill(rsum, rsum + kTile, T(0));
  const T sc = prod.score_scale();

  const int64_t kb_end = g.causal ? qb + 1 : g.nblocks;
  for (int64_t kb = 0; kb < kb_end; ++kb) {
    const int64_t j0 = kb * kTile, n = std::min(kTile, g.T_ - j0), np = round_up(n, kRowPad);
    prod.scores(j0, n, np, ST);
    for (int64_t j = 0; j < np; ++j) {  // scale; mask keys after the query and padding keys
      T* s = ST + j * kTile;
      if (sc != T(1))
        for (int64_t i = 0; i < kTile; i += W) vstore(s + i, vload<V>(s + i) * sc);
      std::fill(s, s + g.first_query(j, j0, i0, n), kNegInf);
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
    prod.add_pv(j0, n, np, mp, ST, O);
  }
  for (int64_t i = 0; i < m; ++i) {
    prod.store_row(i0 + i, O + i * Dp, T(1) / rsum[i]);
    lse[i0 + i] = T((double(rmax[i]) + std::log2(double(rsum[i]))) * kLn2);
  }
}

// Scratch of backward_head itself, in elements of T (a policy adds its own).
template <class T>
int64_t backward_head_scratch(const Geometry<T>& g) {
  const int64_t tp = g.nblocks * kTile;
  return tp * g.Dp + 2 * tp + 2 * kTile * g.Dp + 2 * kTile * kTile;
}

// One head of the backward: dq, dk, dv of that head, written by this call alone. Tiles are
// transposed as in the forward: S^T = k q^T, dP^T = v dO^T, dS^T = P^T (dP^T - D) * scale.
// lse is the head's [T] row. The policy:
//   prepare()                          packs what the products need from q and dout;
//   row_dot(i)                         D_i = rowsum(dout_i * out_i);
//   key_block(j0, n, np)               prepares keys and values [j0, j0 + n) (np padded rows);
//   scores(qb, np, PT), dprobs(qb, np, dST)
//                                      PT = S^T (unscaled), dST = dP^T, [np x kTile], of query block qb;
//   accumulate(i0, m, mp, n, np, PT, dST, dK, dV, dQ)
//                                      dV += P^T dO, dK += dS^T q, dQ[mp x Dp] += dS k (dQ at row i0);
//   store_kv(j0, n, dK, dV), store_q(dQ)  write the results ([rows x Dp] accumulators).
template <class T, int VB, class Prod>
[[gnu::always_inline]] inline void backward_head(const Geometry<T>& g, Prod& prod, const T* lse, T* ws) {
  using V = typename Vec<T, VB>::type;
  constexpr int W = Vec<T, VB>::W;
  const int64_t T_ = g.T_, Dp = g.Dp, tp = g.nblocks * kTile;
  T* dQ = ws;                   // [tp x Dp] dq accumulator
  T* Drow = dQ + tp * Dp;       // [tp] rowsum(dout * out)
  T* lse2 = Drow + tp;          // [tp] lse in base 2; +inf on padding queries (P = 0 there)
  T* dK = lse2 + tp;            // [kTile x Dp]
  T* dV = dK + kTile * Dp;      // [kTile x Dp]
  T* PT = dV + kTile * Dp;      // [kTile x kTile] P^T
  T* dST = PT + kTile * kTile;  // [kTile x kTile] dP^T, then dS^T

  prod.prepare();
  for (int64_t i = 0; i < tp; ++i) {
    Drow[i] = i < T_ ? prod.row_dot(i) : T(0);
    lse2[i] = i < T_ ? lse[i] * T(kLog2e) : std::numeric_limits<T>::infinity();
  }
  std::fill(dQ, dQ + tp * Dp, T(0));
  const V vscale = V{} + g.scale;

  for (int64_t kb = 0; kb < g.nblocks; ++kb) {
    const int64_t j0 = kb * kTile, n = std::min(kTile, T_ - j0), np = round_up(n, kRowPad);
    prod.key_block(j0, n, np);
    std::fill(dK, dK + np * Dp, T(0));
    std::fill(dV, dV + np * Dp, T(0));
    for (int64_t qb = g.causal ? kb : 0; qb < g.nblocks; ++qb) {
      const int64_t i0 = qb * kTile, m = std::min(kTile, T_ - i0), mp = round_up(m, kRowPad);
      prod.scores(qb, np, PT);
      prod.dprobs(qb, np, dST);
      for (int64_t j = 0; j < np; ++j) {
        T* p = PT + j * kTile;
        T* ds = dST + j * kTile;
        exp2_span<T, VB, false>(p, kTile, g.first_query(j, j0, i0, n), g.c, lse2 + i0, nullptr);
        for (int64_t i = 0; i < kTile; i += W)
          vstore(ds + i, vload<V>(p + i) * (vload<V>(ds + i) - vload<V>(Drow + i0 + i)) * vscale);
      }
      prod.accumulate(i0, m, mp, n, np, PT, dST, dK, dV, dQ + i0 * Dp);
    }
    prod.store_kv(j0, n, dK, dV);
  }
  prod.store_q(dQ);
}

// The f32/f64 policies: rows of T, products on FMA register tiles (tile_gemm).
template <class T, int VB>
struct FwdRows {
  const Geometry<T>& g;
  const T *q, *k, *v;  // the head's rows
  T* out;
  T* QT;  // [Dh x kTile] q^T, pre-scaled by c, padding columns zero
  T* Kb;  // [kTile x Dh] ragged key block, zero padded
  T* Vb;  // [kTile x Dp] value block when it needs padding

  static int64_t scratch(const Geometry<T>& g) { return 2 * g.Dh * kTile + kTile * g.Dp; }
  FwdRows(const Geometry<T>& geo, const T* q_, const T* k_, const T* v_, T* out_, T* ws)
      : g(geo), q(q_), k(k_), v(v_), out(out_), QT(ws), Kb(ws + g.Dh * kTile), Vb(Kb + kTile * g.Dh) {}

  T score_scale() const { return T(1); }  // q is pre-scaled
  [[gnu::always_inline]] void query_block(int64_t i0, int64_t m) {
    pack_transposed(q + i0 * g.Dh, m, kTile, g.Dh, kTile, g.c, QT);
  }
  [[gnu::always_inline]] void scores(int64_t j0, int64_t n, int64_t np, T* ST) {
    const T* K = rows_operand(k + j0 * g.Dh, n, np, g.Dh, g.Dh, Kb);
    tile_gemm<T, VB>(np, kTile, g.Dh, K, g.Dh, 1, QT, kTile, ST, kTile, false);
  }
  [[gnu::always_inline]] void add_pv(int64_t j0, int64_t n, int64_t, int64_t mp, const T* ST, T* O) {
    const T* Vr = rows_operand(v + j0 * g.Dh, n, n, g.Dh, g.Dp, Vb);
    tile_gemm<T, VB>(mp, g.Dp, n, ST, 1, kTile, Vr, g.Dp, O, g.Dp, true);  // O += P v (P = S^T transposed)
  }
  [[gnu::always_inline]] void store_row(int64_t i, const T* o, T inv) {
    for (int64_t d = 0; d < g.Dh; ++d) out[i * g.Dh + d] = o[d] * inv;
  }
};

template <class T, int VB>
struct BwdRows {
  const Geometry<T>& g;
  const T *dout, *q, *k, *v, *out;  // the head's rows
  T *dq, *dk, *dv;
  // q^T and dout^T per query block, [nblocks][Dh x kTile]: a block's rows are kTile apart. One
  // [Dh x tp] matrix would put them tp apart, and at tp = 512 (a 2 KiB stride) the Dh rows a tile
  // product walks fall into two groups of L1 sets and miss on every row.
  T* QT;   // [nblocks][Dh x kTile] q^T
  T* dOT;  // [nblocks][Dh x kTile] dout^T
  T* Qr;   // [tp x Dp] q rows, when padding is needed
  T* dOr;  // [tp x Dp] dout rows, when padding is needed
  T* Kb;   // [kTile x Dh] ragged key block
  T* Vb;   // [kTile x Dh] ragged value block
  T* Kr;   // [kTile x Dp] key rows, when padding is needed
  const T *Q = nullptr, *dO = nullptr, *K = nullptr, *Vv = nullptr, *Krows = nullptr;

  static int64_t scratch(const Geometry<T>& g) {
    const int64_t tp = g.nblocks * kTile;
    return 2 * g.Dh * tp + 2 * tp * g.Dp + 2 * kTile * g.Dh + kTile * g.Dp;
  }
  BwdRows(const Geometry<T>& geo, const T* dout_, const T* q_, const T* k_, const T* v_, const T* out_, T* dq_,
          T* dk_, T* dv_, T* ws)
      : g(geo), dout(dout_), q(q_), k(k_), v(v_), out(out_), dq(dq_), dk(dk_), dv(dv_) {
    const int64_t tp = g.nblocks * kTile;
    QT = ws;
    dOT = QT + g.Dh * tp;
    Qr = dOT + g.Dh * tp;
    dOr = Qr + tp * g.Dp;
    Kb = dOr + tp * g.Dp;
    Vb = Kb + kTile * g.Dh;
    Kr = Vb + kTile * g.Dh;
  }

  [[gnu::always_inline]] void prepare() {
    const int64_t Dh = g.Dh;
    for (int64_t qb = 0; qb < g.nblocks; ++qb) {
      const int64_t i0 = qb * kTile, m = std::min(kTile, g.T_ - i0);
      pack_transposed(q + i0 * Dh, m, kTile, Dh, kTile, T(1), QT + qb * Dh * kTile);
      pack_transposed(dout + i0 * Dh, m, kTile, Dh, kTile, T(1), dOT + qb * Dh * kTile);
    }
    Q = rows_operand(q, g.T_, g.T_, Dh, g.Dp, Qr);
    dO = rows_operand(dout, g.T_, g.T_, Dh, g.Dp, dOr);
  }
  // In W lanes, then the lanes in order: a scalar sum would be one dependent chain of Dh
  // multiply-adds per row (T * Dh per head, several percent of the backward).
  [[gnu::always_inline]] T row_dot(int64_t i) const {
    using V = typename Vec<T, VB>::type;
    constexpr int W = Vec<T, VB>::W;
    const T *o = out + i * g.Dh, *d = dout + i * g.Dh;
    V acc = V{};
    int64_t j = 0;
    for (; j + W <= g.Dh; j += W) acc += vload<V>(o + j) * vload<V>(d + j);
    T s = 0;
    for (int w = 0; w < W; ++w) s += acc[w];
    for (; j < g.Dh; ++j) s += o[j] * d[j];
    return s;
  }
  [[gnu::always_inline]] void key_block(int64_t j0, int64_t n, int64_t np) {
    K = rows_operand(k + j0 * g.Dh, n, np, g.Dh, g.Dh, Kb);
    Vv = rows_operand(v + j0 * g.Dh, n, np, g.Dh, g.Dh, Vb);
    Krows = rows_operand(k + j0 * g.Dh, n, n, g.Dh, g.Dp, Kr);
  }
  [[gnu::always_inline]] void scores(int64_t qb, int64_t np, T* PT) {
    tile_gemm<T, VB>(np, kTile, g.Dh, K, g.Dh, 1, QT + qb * g.Dh * kTile, kTile, PT, kTile, false);  // S^T = k q^T
  }
  [[gnu::always_inline]] void dprobs(int64_t qb, int64_t np, T* dST) {
    tile_gemm<T, VB>(np, kTile, g.Dh, Vv, g.Dh, 1, dOT + qb * g.Dh * kTile, kTile, dST, kTile, false);  // dP^T = v dO^T
  }
  [[gnu::always_inline]] void accumulate(int64_t i0, int64_t m, int64_t mp, int64_t n, int64_t np, const T* PT,
                                         const T* dST, T* dK, T* dV, T* dQ) {
    const int64_t Dp = g.Dp;
    tile_gemm<T, VB>(np, Dp, m, PT, kTile, 1, dO + i0 * Dp, Dp, dV, Dp, true);   // dV += P^T dO
    tile_gemm<T, VB>(np, Dp, m, dST, kTile, 1, Q + i0 * Dp, Dp, dK, Dp, true);   // dK += dS^T q
    tile_gemm<T, VB>(mp, Dp, n, dST, 1, kTile, Krows, Dp, dQ, Dp, true);        // dQ += dS k
  }
  [[gnu::always_inline]] void store_kv(int64_t j0, int64_t n, const T* dK, const T* dV) {
    for (int64_t j = 0; j < n; ++j) {
      std::memcpy(dk + (j0 + j) * g.Dh, dK + j * g.Dp, size_t(g.Dh) * sizeof(T));
      std::memcpy(dv + (j0 + j) * g.Dh, dV + j * g.Dp, size_t(g.Dh) * sizeof(T));
    }
  }
  [[gnu::always_inline]] void store_q(const T* dQ) {
    for (int64_t i = 0; i < g.T_; ++i) std::memcpy(dq + i * g.Dh, dQ + i * g.Dp, size_t(g.Dh) * sizeof(T));
  }
};

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
inline Geometry<T> geometry(const Tensor& q, double scale, bool causal) {
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
inline bool use_threads(const Tensor& q, int64_t items) { return items > 1 && q.numel() * q.size(2) >= (int64_t(1) << 18); }

// Whether the forward's work items are whole heads (all query blocks of one batch*head, so its
// keys and values stay in one core's L2, and bf16 ones are widened once) rather than one query
// block each: when there are at least 4 heads per thread to balance the team.
inline bool whole_head_items(int64_t BH) {
  const int nth = omp_in_parallel() ? 1 : omp_get_max_threads();
  return BH >= 4 * int64_t(nth);
}

// The bf16 routines on AVX512_BF16 pair products (cpu/attention_bf16_dot.cpp): q, k, v, out, dout
// bf16 [B, H, T, Dh] contiguous, lse f32 [B, H, T]. They return false, and touch nothing, where
// they do not apply: a CPU without a native bf16 GEMM kernel (or with it switched off), or an odd
// head dim; the caller then widens to f32.
bool bf16_dot_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal, const Tensor& out,
                      const Tensor& lse);
bool bf16_dot_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                       const Tensor& lse, double scale, bool causal, const Tensor& dq, const Tensor& dk,
                       const Tensor& dv);

}  // namespace mg::cpu::attn

#pragma GCC diagnostic pop
