// AVX-512F GEMM micro-kernels. Compiled with function-level target attributes so the library
// needs no -march flag; only called after __builtin_cpu_supports("avx512f") said yes.
#include "cpu/gemm_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MG_AVX512 __attribute__((target("avx512f")))

#ifndef MG_GEMM_AVX512_KU
#define MG_GEMM_AVX512_KU 2
#endif
#define MG_GEMM_TARGET MG_AVX512
#include "cpu/gemm_microkernel.h"

namespace mg::cpu::detail {
namespace {

MG_GEMM_VECTOR(Avx512F32, float, __m512, _mm512, ps);
MG_GEMM_VECTOR(Avx512F64, double, __m512d, _mm512, pd);

// bf16 pairs: MR rows x 32 columns, 2*MR f32 accumulators as in the f32 kernel; each unit of a
// and b holds two consecutive K steps, and one vdpbf16ps does both (two exact products added into
// the f32 accumulator), so a K step costs half an f32 one.
#define MG_AVX512BF16 __attribute__((target("avx512f,avx512bf16")))
template <int MR>
MG_AVX512BF16 void bf16gemm_avx512_kernel(int64_t kcu, const uint32_t* a, const uint32_t* b, float* c, int64_t ldc,
                                          float alpha, float beta) {
  __m512 c0[MR], c1[MR];
  tile_begin<Avx512F32, MR>(c0, c1, c, ldc);
  for (int64_t k = 0; k < kcu; ++k) {
    _mm_prefetch(reinterpret_cast<const char*>(b + 32 * 8), _MM_HINT_T0);
    // The driver's next A micro-panel (same k) into L2; see gemm_microkernel.
    _mm_prefetch(reinterpret_cast<const char*>(a + MR * kcu), _MM_HINT_T1);
    const __m512bh b0 = (__m512bh)_mm512_load_si512(b);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(b + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(int(a[i]));
      c0[i] = _mm512_dpbf16_ps(c0[i], ai, b0);
      c1[i] = _mm512_dpbf16_ps(c1[i], ai, b1);
    }
    a += MR;
    b += 32;
  }
  tile_store<Avx512F32, MR>(c0, c1, c, ldc, alpha, beta);
}

// Gather-type bf16 packing (GemmKernelBf16::pack_rows): unit (k pair p, row r) =
// src[r*ld + 2p] | src[r*ld + 2p + 1] << 16. When the pairs are 32-bit aligned in memory they
// are exactly f32-sized elements, so the AVX2 f32 transposing packer moves them (bit copies).
// Installed only on CPUs with AVX2 (gemm_kernels_avx512 checks once).
void bf16_pack_rows(const uint16_t* src, int64_t ld, int64_t rows, int64_t kc, int w, uint32_t* dst) {
  const int64_t kcu = (kc + 1) / 2, kc2 = kc / 2;
  int64_t done = 0;  // units per row handled by the fast path
  if (((reinterpret_cast<uintptr_t>(src) | uintptr_t(ld)) & 1) == 0 && kc2 > 0) {
    gemm_pack_rows_avx2_f32(reinterpret_cast<const float*>(src), ld / 2, rows, kc2, w, reinterpret_cast<float*>(dst));
    done = kc2;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const uint16_t* s = src + r * ld;
    for (int64_t p = done; p < kcu; ++p) {
      const uint32_t hi = 2 * p + 1 < kc ? s[2 * p + 1] : 0;
      dst[p * w + r] = uint32_t(s[2 * p]) | hi << 16;
    }
  }
  for (int64_t p = done; p < kcu; ++p)
    for (int64_t r = rows; r < w; ++r) dst[p * w + r] = 0;
}

}  // namespace

// Copy-type bf16 packing (op(A) with trans_a, op(B) without trans_b): rows 2p and 2p+1 of the
// kc x ncols source interleave into unit row p of W-wide panels:
//   dst[q*W*kcu + p*W + j] = src[2p*ld + q*W + j] | src[(2p+1)*ld + q*W + j] << 16.
MG_AVX512 void gemm_pack_copy_bf16(const uint16_t* src, int64_t ld, int64_t ncols, int64_t kc, int w,
                                   uint32_t* dst) {
  const int64_t kcu = (kc + 1) / 2;
  constexpr int64_t kAhead = 4;  // pairs of rows
  for (int64_t p = 0; p < kcu; ++p) {
    const uint16_t* r0 = src + 2 * p * ld;
    const bool has1 = 2 * p + 1 < kc;
    const uint16_t* r1 = has1 ? r0 + ld : nullptr;
    // The rows kAhead pairs down (gemm_prefetch_row says why; the f32 copy packer does the same).
    // Packing the A operand of a TN GEMM (dY^T X, the weight gradients) went from 20% to 15% of
    // its time, the GEMM +6% (docs/benchmarks.md).
    if (p + kAhead < kcu) {
      const uint16_t* f0 = r0 + 2 * kAhead * ld;
      gemm_prefetch_row(f0, ncols);
      if (2 * (p + kAhead) + 1 < kc) gemm_prefetch_row(f0 + ld, ncols);
    }
    uint32_t* d = dst + p * w;
    int64_t j0 = 0;
    for (int64_t q = 0; j0 + w <= ncols; ++q, j0 += w) {
      uint32_t* dq = d + q * w * kcu;
      int64_t j = 0;
      for (; j + 16 <= w; j += 16) {
        const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r0 + j0 + j));
        const __m256i x1 = has1 ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(r1 + j0 + j))
                                : _mm256_setzero_si256();
        // Interleave the two rows' 16-bit values (within 128-bit lanes), then put the lanes in order.
        const __m256i lo = _mm256_unpacklo_epi16(x0, x1), hi = _mm256_unpackhi_epi16(x0, x1);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dq + j), _mm256_permute2x128_si256(lo, hi, 0x20));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dq + j + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
      }
      for (; j + 8 <= w; j += 8) {  // 12-wide A panels: 8 + 4
        const __m128i x0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(r0 + j0 + j));
        const __m128i x1 = has1 ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(r1 + j0 + j)) : _mm_setzero_si128();
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dq + j), _mm_unpacklo_epi16(x0, x1));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dq + j + 4), _mm_unpackhi_epi16(x0, x1));
      }
      for (; j + 4 <= w; j += 4) {
        const __m128i x0 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r0 + j0 + j));
        const __m128i x1 = has1 ? _mm_loadl_epi64(reinterpret_cast<const __m128i*>(r1 + j0 + j)) : _mm_setzero_si128();
        _mm_storeu_si128(reinterpret_cast<__m128i*>(dq + j), _mm_unpacklo_epi16(x0, x1));
      }
      for (; j < w; ++j) dq[j] = uint32_t(r0[j0 + j]) | (has1 ? uint32_t(r1[j0 + j]) << 16 : 0u);
    }
    if (j0 < ncols) {  // last, partial panel: zero columns past ncols
      uint32_t* dq = d + (j0 / w) * w * kcu;
      for (int64_t j = 0; j < w; ++j) {
        const int64_t c = j0 + j;
        dq[j] = c < ncols ? uint32_t(r0[c]) | (has1 ? uint32_t(r1[c]) << 16 : 0u) : 0u;
      }
    }
  }
}

namespace {

#ifndef MG_GEMM_AVX512_MR_F32
#define MG_GEMM_AVX512_MR_F32 12
#endif
#ifndef MG_GEMM_AVX512_MR_F64
#define MG_GEMM_AVX512_MR_F64 8
#endif
#ifndef MG_GEMM_AVX512_KC_F32
#define MG_GEMM_AVX512_KC_F32 1024
#endif
#ifndef MG_GEMM_AVX512_NC_F32
#define MG_GEMM_AVX512_NC_F32 256
#endif
#ifndef MG_GEMM_AVX512_KC_BF16
#define MG_GEMM_AVX512_KC_BF16 2048
#endif
#ifndef MG_GEMM_AVX512_NC_BF16
#define MG_GEMM_AVX512_NC_BF16 384
#endif
#ifndef MG_GEMM_AVX512_B_SLICE
#define MG_GEMM_AVX512_B_SLICE (int64_t(512) << 10)
#endif
#ifndef MG_GEMM_AVX512_KC_F64
#define MG_GEMM_AVX512_KC_F64 384
#endif
#ifndef MG_GEMM_AVX512_NC_F64
#define MG_GEMM_AVX512_NC_F64 256
#endif
#define MG_GEMM_STR2(x) #x
#define MG_GEMM_STR(x) MG_GEMM_STR2(x)

}  // namespace

GemmKernelSet gemm_kernels_avx512() {
  GemmKernelSet s;
  // f32 12x32: 24 zmm accumulators + 2 B vectors + 1 broadcast; per k step 2 loads, 12
  // broadcasts, 24 FMAs. Blocking: the 12 x kc A micro-panel stays in L1 (24 KiB at KC=512;
  // deeper blocks spill it to L2, which costs less than they save), a task's KC x nc slice of
  // packed B in L2 (b_slice_bytes: nc=256 at KC=512, 128 at KC=1024), packed A's current K block
  // in L2/L3. Every K block after the first reads and writes C again, so deep blocks pay:
  // kc=512 rather than 384 let K=512 (d=512 layers, the token mixing at n_ctx=512) run as one
  // block (+3-5%), and kc=1024 with the B slice held at 512 KiB gives K>=2048 (the backward's
  // weight and input gradients, the feed-forward's second layer) +3-5% on two threads
  // (docs/benchmarks.md, "Peaks"). bf16 (below) gains more from the same change.
  // f64 8x16: 16 accumulators; kc=384, nc=256 (A micro-panel 24 KiB, B slice <= 768 KiB).
  // Tuned on a 2-vCPU AMD EPYC (Zen 4: 32 KiB L1d, 1 MiB L2 per core); the MG_GEMM_AVX512_*
  // macros above override the choices for experiments.
  // The K loop of both is unrolled MG_GEMM_AVX512_KU times (2 measured best: least register
  // spilling by GCC).
  s.f32 = {.fn = &gemm_microkernel<Avx512F32, MG_GEMM_AVX512_MR_F32, MG_GEMM_AVX512_KU>,
           .mr = MG_GEMM_AVX512_MR_F32, .nr = 32, .kc = MG_GEMM_AVX512_KC_F32, .mc = 1 << 20,
           .nc = MG_GEMM_AVX512_NC_F32, .b_slice_bytes = MG_GEMM_AVX512_B_SLICE, .name = "avx512f " MG_GEMM_STR(MG_GEMM_AVX512_MR_F32) "x32"};
  s.f64 = {.fn = &gemm_microkernel<Avx512F64, MG_GEMM_AVX512_MR_F64, MG_GEMM_AVX512_KU>,
           .mr = MG_GEMM_AVX512_MR_F64, .nr = 16, .kc = MG_GEMM_AVX512_KC_F64, .mc = 1 << 20,
           .nc = MG_GEMM_AVX512_NC_F64, .name = "avx512f " MG_GEMM_STR(MG_GEMM_AVX512_MR_F64) "x16"};
  if (gemm_isa_supported("avx512bf16") && gemm_isa_supported("avx2")) {
    // kc = 2048 K steps = 1024 units (the 12-row A micro-panel is 12 KiB per 512 K steps), the
    // task's slice of B held at 512 KiB: nc = 384 at KC=512, 256 at 1024, 128 at 2048. Against
    // kc=512, nc=384: K>=2048 training shapes +7-12% on two threads, K=512 unchanged.
    s.bf16 = {.fn = &bf16gemm_avx512_kernel<12>, .mr = 12, .nr = 32, .kc = MG_GEMM_AVX512_KC_BF16, .mc = 1 << 20,
              .nc = MG_GEMM_AVX512_NC_BF16, .b_slice_bytes = MG_GEMM_AVX512_B_SLICE,
              .name = "avx512bf16 12x32", .pack_rows = &bf16_pack_rows};
  }
  if (gemm_isa_supported("avx2")) {  // every AVX-512 CPU has it, but do not assume
    s.f32.pack_rows = &gemm_pack_rows_avx2_f32;
    s.f64.pack_rows = &gemm_pack_rows_avx2_f64;
  }
  s.ok = true;
  return s;
}

}  // namespace mg::cpu::detail

#endif  // x86-64 GCC/Clang (elsewhere gemm_kernels.cpp defines the empty kernel set)
