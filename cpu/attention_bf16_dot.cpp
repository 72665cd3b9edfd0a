// bf16 attention on AVX512_BF16 pair products (vdpbf16ps): the flash-attention routines of
// cpu/attention_tiles.h with every tile product taken two bf16 K steps per instruction, products
// exact and accumulated in f32, as the bf16 GEMM does.
//
// What is rounded to bf16, and only that: q, k, v and dout are bf16 already, and the
// probabilities P and dS = P * (dP - D) * scale are rounded to bf16 before their products with
// v, dout, q and k, as torch.autocast's bf16 matmuls round them (and as flash-attention kernels do).
// The scores, the softmax's max, sum and rescaling, lse, D and every accumulator stay f32. So an
// output differs from f32 attention on the same bf16 inputs by at most u = 2^-8 (bf16's unit
// roundoff) of the sum of the |P| |v| (or |dS| |q|, ...) terms it adds, before its own final
// rounding; tests/test_attention.cpp holds it to that bound against f64.
//
// Operands are 32-bit words of two bf16 values adjacent in K (low half the even one), the GEMM's
// unit: A (broadcast per row) must pair its K steps, B (vector loads) holds, per K pair, one word
// per output column. Per product:
//   S^T = k q^T     A: k rows in place (pairs along Dh)    B: q^T as words [Dh/2 x kTile]
//   O += P v        A: P from S^T's rows 2j, 2j+1          B: v rows interleaved by pairs [keys/2 x Dp]
//   dP^T = v dO^T   A: v rows in place                     B: dout^T as words
//   dV += P^T dO    A: P^T rows (pairs along queries)      B: dout interleaved
//   dK += dS^T q    A: dS^T rows                           B: q interleaved
//   dQ += dS k      A: dS from dS^T's rows 2j, 2j+1        B: k interleaved
// Each packing is O(rows * Dh) per head or per tile against O(rows * kTile * Dh) of products.
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu/attention_tiles.h"
#include "cpu/bf16_math.h"
#include "cpu/dispatch.h"
#include "cpu/gemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#pragma GCC diagnostic ignored "-Wpsabi"

// MG_DOT_INLINE for the helpers. The policies' methods are called from forward_block /
// backward_head, which carry no target of their own, so they are plain MG_DOT (an always_inline
// callee with a wider target cannot go into them); the flatten of the MG_DOT entry routines
// inlines them all the same.
#define MG_DOT __attribute__((target("avx512f,avx512bf16,avx2,fma")))
#define MG_DOT_INLINE __attribute__((always_inline, target("avx512f,avx512bf16,avx2,fma"))) inline

namespace mg::cpu::attn {
namespace {

using u16 = uint16_t;
using u32 = uint32_t;

MG_DOT_INLINE u32 word_at(const void* p) {
  u32 w;
  std::memcpy(&w, p, 4);
  return w;
}

// C[R x 16*CN] (+)= A[R x 2*K2] B[2*K2 x 16*CN] in K pairs: A word (r, k) at A[r*ars + k*aks], B
// word (k, column j) at B[k*ldb + j], C row-major f32.
template <int R, int CN>
MG_DOT_INLINE void dot_tile(int64_t K2, const u32* A, int64_t ars, int64_t aks, const u32* B, int64_t ldb, float* C,
                            int64_t ldc, bool acc) {
  __m512 c[R][CN];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < CN; ++j) c[r][j] = acc ? _mm512_loadu_ps(C + r * ldc + 16 * j) : _mm512_setzero_ps();
  for (int64_t k = 0; k < K2; ++k) {
    __m512bh b[CN];
#pragma GCC unroll 4
    for (int j = 0; j < CN; ++j) b[j] = (__m512bh)_mm512_loadu_si512(B + k * ldb + 16 * j);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(int(word_at(A + r * ars + k * aks)));
#pragma GCC unroll 4
      for (int j = 0; j < CN; ++j) c[r][j] = _mm512_dpbf16_ps(c[r][j], a, b[j]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int j = 0; j < CN; ++j) _mm512_storeu_ps(C + r * ldc + 16 * j, c[r][j]);
}

template <int CN>
MG_DOT_INLINE void dot_columns(int64_t M, int64_t K2, const u32* A, int64_t ars, int64_t aks, const u32* B,
                               int64_t ldb, float* C, int64_t ldc, bool acc) {
  constexpr int R = rows_for<64>(CN);
  for (int64_t i = 0; i < M; i += R) dot_tile<R, CN>(K2, A + i * ars, ars, aks, B, ldb, C + i * ldc, ldc, acc);
}

// C[M x N] (+)= A B over K2 pairs: M a multiple of kRowPad, N of 16. K2 == 0 with !acc writes zeros.
MG_DOT_INLINE void dot_gemm(int64_t M, int64_t N, int64_t K2, const u32* A, int64_t ars, int64_t aks, const u32* B,
                            int64_t ldb, float* C, int64_t ldc, bool acc) {
  for (int64_t j = 0; j < N; j += 64) {
    switch (std::min<int64_t>(4, (N - j) / 16)) {
      case 4: dot_columns<4>(M, K2, A, ars, aks, B + j, ldb, C + j, ldc, acc); break;
      case 3: dot_columns<3>(M, K2, A, ars, aks, B + j, ldb, C + j, ldc, acc); break;
      case 2: dot_columns<2>(M, K2, A, ars, aks, B + j, ldb, C + j, ldc, acc); break;
      default: dot_columns<1>(M, K2, A, ars, aks, B + j, ldb, C + j, ldc, acc); break;
    }
  }
}

// Two rows of 16 bf16 values, a and b, as 16 words a_i | b_i << 16.
MG_DOT_INLINE void interleave16(__m256i a, __m256i b, u32* dst) {
  const __m256i lo = _mm256_unpacklo_epi16(a, b), hi = _mm256_unpackhi_epi16(a, b);  // within 128-bit lanes
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_permute2x128_si256(lo, hi, 0x20));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
}

// dst[p*ld + d] = x[2p][d] | x[2p+1][d] << 16 for the rows < rows of x ([rows x Dh] bf16), zero
// for missing rows, for p < pairs; zero for Dh <= d < ld.
MG_DOT_INLINE void interleave_rows(const u16* x, int64_t rows, int64_t pairs, int64_t Dh, int64_t ld, u32* dst) {
  for (int64_t p = 0; p < pairs; ++p) {
    u32* d = dst + p * ld;
    const int64_t r0 = 2 * p, r1 = r0 + 1;
    if (r1 < rows) {
      const u16 *a = x + r0 * Dh, *b = x + r1 * Dh;
      int64_t j = 0;
      for (; j + 16 <= Dh; j += 16)
        interleave16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + j)),
                     _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + j)), d + j);
      for (; j < Dh; ++j) d[j] = u32(a[j]) | u32(b[j]) << 16;
    } else if (r0 < rows) {
      for (int64_t j = 0; j < Dh; ++j) d[j] = x[r0 * Dh + j];
    } else {
      std::fill(d, d + Dh, 0u);
    }
    std::fill(d + Dh, d + ld, 0u);
  }
}

// The words of rows [0, rows) of x ([rows x Dh] bf16, Dh even) transposed:
// dst[w*ld + i] = word w of row i for i < rows; zero for rows <= i < cols.
MG_DOT_INLINE void transpose_words(const u16* x, int64_t rows, int64_t cols, int64_t Dh, int64_t ld, u32* dst) {
  const int64_t Dw = Dh / 2;
  for (int64_t w = 0; w < Dw; ++w) std::fill(dst + w * ld + rows, dst + w * ld + cols, 0u);
  for (int64_t i0 = 0; i0 < rows; i0 += 16) {  // 16 rows at a time keeps the reads in cache lines
    const int64_t i1 = std::min(rows, i0 + 16);
    for (int64_t w = 0; w < Dw; ++w)
      for (int64_t i = i0; i < i1; ++i) dst[w * ld + i] = word_at(x + i * Dh + 2 * w);
  }
}

// Rows of x ([n x Dh] bf16, Dh even) as words [rows_needed x Dh/2]: in place when they may be read
// as words (4-byte aligned) and there are rows enough, else a zero-padded copy in buf.
MG_DOT_INLINE const u32* word_rows(const u16* x, int64_t n, int64_t rows_needed, int64_t Dh, u32* buf) {
  if (rows_needed <= n && reinterpret_cast<uintptr_t>(x) % 4 == 0) return reinterpret_cast<const u32*>(x);
  const int64_t Dw = Dh / 2;
  for (int64_t r = 0; r < rows_needed; ++r)
    for (int64_t w = 0; w < Dw; ++w) buf[r * Dw + w] = r < n ? word_at(x + r * Dh + 2 * w) : 0u;
  return buf;
}

// f32 rows [rows x cols] (cols a multiple of 16) rounded to bf16, pairs along the row:
// dst[r*ld + i] = bf16(s[r][2i]) | bf16(s[r][2i+1]) << 16.
MG_DOT_INLINE void rows_to_words(const float* s, int64_t rows, int64_t cols, int64_t lds, u32* dst, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < cols; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + r * ld + i / 2),
                          (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(s + r * lds + i)));
}

// f32 rows [2*pairs x cols] (cols a multiple of 16) rounded to bf16, pairs across rows:
// dst[p*ld + i] = bf16(s[2p][i]) | bf16(s[2p+1][i]) << 16.
MG_DOT_INLINE void row_pairs_to_words(const float* s, int64_t pairs, int64_t cols, int64_t lds, u32* dst,
                                      int64_t ld) {
  for (int64_t p = 0; p < pairs; ++p)
    for (int64_t i = 0; i < cols; i += 16)
      interleave16((__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(s + 2 * p * lds + i)),
                   (__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(s + (2 * p + 1) * lds + i)), dst + p * ld + i);
}

MG_DOT_INLINE float row_dot_bf16(const u16* a, const u16* b, int64_t n) {
  typedef u16 H __attribute__((vector_size(32)));
  typedef u32 U __attribute__((vector_size(64)));
  typedef float F __attribute__((vector_size(64)));
  F acc = F{};
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {  // bf16 -> f32 is the bits shifted up
    H x, y;
    std::memcpy(&x, a + j, sizeof(H));
    std::memcpy(&y, b + j, sizeof(H));
    acc += (F)(__builtin_convertvector(x, U) << 16) * (F)(__builtin_convertvector(y, U) << 16);
  }
  float s = 0;
  for (int l = 0; l < 16; ++l) s += acc[l];
  for (; j < n; ++j) s += bf16::to_float(a[j]) * bf16::to_float(b[j]);
  return s;
}

MG_DOT_INLINE void store_bf16_row(const float* src, int64_t n, float s, u16* dst) {
  for (int64_t d = 0; d < n; ++d) dst[d] = bf16_bits_rne(src[d] * s);
}

// Words per forward item besides forward_block's floats: q^T of the block, a key block, P.
int64_t fwd_words(const Geometry<float>& g) { return g.Dh / 2 * kTile + kTile * (g.Dh / 2) + kTile / 2 * kTile; }

struct FwdDot {
  const Geometry<float>& g;
  const u16 *q, *k;  // the head's rows
  const u32* VW;     // the head's values interleaved by key pairs, [tp/2 x Dp], zero past T
  u16* out;
  u32* QW = nullptr;  // [Dh/2 x kTile] q^T words, padding columns zero
  u32* KW = nullptr;  // [kTile x Dh/2] key block words, when padding is needed
  u32* PW = nullptr;  // [kTile/2 x kTile] P, key pairs x queries

  float score_scale() const { return g.c; }
  MG_DOT void query_block(int64_t i0, int64_t m) { transpose_words(q + i0 * g.Dh, m, kTile, g.Dh, kTile, QW); }
  MG_DOT void scores(int64_t j0, int64_t n, int64_t np, float* ST) {
    const u32* K = word_rows(k + j0 * g.Dh, n, np, g.Dh, KW);
    dot_gemm(np, kTile, g.Dh / 2, K, g.Dh / 2, 1, QW, kTile, ST, kTile, false);
  }
  MG_DOT void add_pv(int64_t j0, int64_t, int64_t np, int64_t mp, const float* ST, float* O) {
    row_pairs_to_words(ST, np / 2, kTile, kTile, PW, kTile);
    dot_gemm(mp, g.Dp, np / 2, PW, 1, kTile, VW + j0 / 2 * g.Dp, g.Dp, O, g.Dp, true);
  }
  MG_DOT void store_row(int64_t i, const float* o, float inv) { store_bf16_row(o, g.Dh, inv, out + i * g.Dh); }
};

struct BwdDot {
  const Geometry<float>& g;
  const u16 *dout, *q, *k, *v, *out;  // the head's rows
  u16 *dq, *dk, *dv;
  u32* QW = nullptr;    // [nblocks][Dh/2 x kTile] q^T words per query block
  u32* dOW = nullptr;   // [nblocks][Dh/2 x kTile] dout^T words
  u32* QI = nullptr;    // [tp/2 x Dp] q interleaved by query pairs
  u32* dOI = nullptr;   // [tp/2 x Dp] dout interleaved
  u32* KW = nullptr;    // [kTile x Dh/2] key block words, when padding is needed
  u32* VW = nullptr;    // [kTile x Dh/2] value block words, when padding is needed
  u32* KI = nullptr;    // [kTile/2 x Dp] key block interleaved by key pairs
  u32* PTW = nullptr;   // [kTile x kTile/2] P^T rows
  u32* dSTW = nullptr;  // [kTile x kTile/2] dS^T rows
  u32* dSW = nullptr;   // [kTile/2 x kTile] dS, key pairs x queries
  const u32 *K = nullptr, *Vv = nullptr;

  static int64_t words(const Geometry<float>& g) {
    const int64_t tp = g.nblocks * kTile;
    return 2 * tp * g.Dh / 2 + 2 * (tp / 2) * g.Dp + 2 * kTile * (g.Dh / 2) + kTile / 2 * g.Dp + 3 * kTile * kTile / 2;
  }
  void carve(u32* w) {
    const int64_t tp = g.nblocks * kTile, Dw = g.Dh / 2;
    QW = w;
    dOW = QW + tp * Dw;
    QI = dOW + tp * Dw;
    dOI = QI + tp / 2 * g.Dp;
    KW = dOI + tp / 2 * g.Dp;
    VW = KW + kTile * Dw;
    KI = VW + kTile * Dw;
    PTW = KI + kTile / 2 * g.Dp;
    dSTW = PTW + kTile * kTile / 2;
    dSW = dSTW + kTile * kTile / 2;
  }

  MG_DOT void prepare() {
    const int64_t Dh = g.Dh, Dw = Dh / 2, tp = g.nblocks * kTile;
    for (int64_t qb = 0; qb < g.nblocks; ++qb) {
      const int64_t i0 = qb * kTile, m = std::min(kTile, g.T_ - i0);
      transpose_words(q + i0 * Dh, m, kTile, Dh, kTile, QW + qb * Dw * kTile);
      transpose_words(dout + i0 * Dh, m, kTile, Dh, kTile, dOW + qb * Dw * kTile);
    }
    interleave_rows(q, g.T_, tp / 2, Dh, g.Dp, QI);
    interleave_rows(dout, g.T_, tp / 2, Dh, g.Dp, dOI);
  }
  MG_DOT float row_dot(int64_t i) const { return row_dot_bf16(out + i * g.Dh, dout + i * g.Dh, g.Dh); }
  MG_DOT void key_block(int64_t j0, int64_t n, int64_t np) {
    K = word_rows(k + j0 * g.Dh, n, np, g.Dh, KW);
    Vv = word_rows(v + j0 * g.Dh, n, np, g.Dh, VW);
    interleave_rows(k + j0 * g.Dh, n, np / 2, g.Dh, g.Dp, KI);
  }
  MG_DOT void scores(int64_t qb, int64_t np, float* PT) {
    const int64_t Dw = g.Dh / 2;
    dot_gemm(np, kTile, Dw, K, Dw, 1, QW + qb * Dw * kTile, kTile, PT, kTile, false);  // S^T = k q^T
  }
  MG_DOT void dprobs(int64_t qb, int64_t np, float* dST) {
    const int64_t Dw = g.Dh / 2;
    dot_gemm(np, kTile, Dw, Vv, Dw, 1, dOW + qb * Dw * kTile, kTile, dST, kTile, false);  // dP^T = v dO^T
  }
  MG_DOT void accumulate(int64_t i0, int64_t m, int64_t mp, int64_t, int64_t np, const float* PT,
                                const float* dST, float* dK, float* dV, float* dQ) {
    const int64_t Dp = g.Dp, m2 = (m + 1) / 2;  // query pairs (a padding query has P = dS = 0)
    rows_to_words(PT, np, kTile, kTile, PTW, kTile / 2);
    rows_to_words(dST, np, kTile, kTile, dSTW, kTile / 2);
    row_pairs_to_words(dST, np / 2, kTile, kTile, dSW, kTile);
    dot_gemm(np, Dp, m2, PTW, kTile / 2, 1, dOI + i0 / 2 * Dp, Dp, dV, Dp, true);  // dV += P^T dO
    dot_gemm(np, Dp, m2, dSTW, kTile / 2, 1, QI + i0 / 2 * Dp, Dp, dK, Dp, true);  // dK += dS^T q
    dot_gemm(mp, Dp, np / 2, dSW, 1, kTile, KI, Dp, dQ, Dp, true);                 // dQ += dS k
  }
  MG_DOT void store_kv(int64_t j0, int64_t n, const float* dK, const float* dV) {
    for (int64_t j = 0; j < n; ++j) {
      store_bf16_row(dK + j * g.Dp, g.Dh, 1.0f, dk + (j0 + j) * g.Dh);
      store_bf16_row(dV + j * g.Dp, g.Dh, 1.0f, dv + (j0 + j) * g.Dh);
    }
  }
  MG_DOT void store_q(const float* dQ) {
    for (int64_t i = 0; i < g.T_; ++i) store_bf16_row(dQ + i * g.Dp, g.Dh, 1.0f, dq + i * g.Dh);
  }
};

// Query block qb of one head, its values already interleaved in vw.
MG_DOT __attribute__((flatten)) void forward_block_dot(const Geometry<float>& g, const u16* q, const u16* k,
                                                       const u32* vw, u16* out, float* lse, int64_t qb, float* ws) {
  u32* w = reinterpret_cast<u32*>(ws + forward_block_scratch(g));
  const int64_t Dw = g.Dh / 2;
  FwdDot prod{g, q, k, vw, out, w, w + Dw * kTile, w + 2 * Dw * kTile};
  forward_block<float, 64>(g, prod, qb, lse, ws);
}

// Rows [0, rows) of a head's values interleaved by pairs into vw, up to pair `pairs` (zeros past rows).
MG_DOT __attribute__((flatten)) void interleave_values(const u16* v, int64_t rows, int64_t pairs,
                                                       const Geometry<float>& g, u32* vw) {
  interleave_rows(v, rows, pairs, g.Dh, g.Dp, vw);
}

MG_DOT __attribute__((flatten)) void backward_head_dot(const Geometry<float>& g, BwdDot& prod, const float* lse,
                                                       float* ws) {
  backward_head<float, 64>(g, prod, lse, ws);
}

bool applies(const Tensor& q) { return q.size(3) % 2 == 0 && bf16gemm_native(); }

const u16* bits(const Tensor& t) { return reinterpret_cast<const u16*>(ptr<bf16>(t)); }
u16* bits_mut(const Tensor& t) { return reinterpret_cast<u16*>(ptr<bf16>(t)); }

}  // namespace

bool bf16_dot_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal, const Tensor& out,
                      const Tensor& lse) {
  if (!applies(q)) return false;
  const int64_t BH = q.size(0) * q.size(1);
  const Geometry<float> g = geometry<float>(q, scale, causal);
  const int64_t T_ = g.T_, Dh = g.Dh, nq = g.nblocks, head = T_ * Dh, tp = nq * kTile;
  const u16 *qp = bits(q), *kp = bits(k), *vp = bits(v);
  u16* op = bits_mut(out);
  float* lp = ptr<float>(lse);
  const int64_t block_ws = forward_block_scratch(g) + fwd_words(g);
  const int64_t scratch = block_ws + tp / 2 * g.Dp;  // + the interleaved values
  if (whole_head_items(BH)) {
    // A head's values are interleaved once for all its query blocks.
    run_items<float>(BH, scratch, use_threads(q, BH), [&](int64_t bh, float* ws) {
      const int64_t off = bh * head;
      u32* vw = reinterpret_cast<u32*>(ws + block_ws);
      interleave_values(vp + off, T_, tp / 2, g, vw);
      for (int64_t qb = nq - 1; qb >= 0; --qb)
        forward_block_dot(g, qp + off, kp + off, vw, op + off, lp + bh * T_, qb, ws);
    });
    return true;
  }
  const int64_t items = BH * nq;
  run_items<float>(items, scratch, use_threads(q, items), [&](int64_t it, float* ws) {
    // Longest items first (causal: late query blocks see the most keys).
    const int64_t bh = it % BH, qb = nq - 1 - it / BH, off = bh * head;
    const int64_t kend = causal ? (qb + 1) * kTile : tp;  // the key rows this block reads, padded
    u32* vw = reinterpret_cast<u32*>(ws + block_ws);
    interleave_values(vp + off, std::min(T_, kend), kend / 2, g, vw);
    forward_block_dot(g, qp + off, kp + off, vw, op + off, lp + bh * T_, qb, ws);
  });
  return true;
}

bool bf16_dot_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                       const Tensor& lse, double scale, bool causal, const Tensor& dq, const Tensor& dk,
                       const Tensor& dv) {
  if (!applies(q)) return false;
  const int64_t BH = q.size(0) * q.size(1);
  const Geometry<float> g = geometry<float>(q, scale, causal);
  const int64_t head = g.T_ * g.Dh;
  const int64_t head_ws = backward_head_scratch(g);
  run_items<float>(BH, head_ws + BwdDot::words(g), use_threads(q, BH), [&](int64_t bh, float* ws) {
    const int64_t off = bh * head;
    BwdDot prod{g,
                bits(dout) + off,
                bits(q) + off,
                bits(k) + off,
                bits(v) + off,
                bits(out) + off,
                bits_mut(dq) + off,
                bits_mut(dk) + off,
                bits_mut(dv) + off};
    prod.carve(reinterpret_cast<u32*>(ws + head_ws));
    backward_head_dot(g, prod, ptr<float>(lse) + bh * g.T_, ws);
  });
  return true;
}

}  // namespace mg::cpu::attn

#else  // no AVX512_BF16 build: the caller widens

namespace mg::cpu::attn {
bool bf16_dot_forward(const Tensor&, const Tensor&, const Tensor&, double, bool, const Tensor&, const Tensor&) {
  return false;
}
bool bf16_dot_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                       double, bool, const Tensor&, const Tensor&, const Tensor&) {
  return false;
}
}  // namespace mg::cpu::attn

#endif
