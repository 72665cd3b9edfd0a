// AVX2+FMA GEMM micro-kernels. Compiled with function-level target attributes so the library
// needs no -march flag; only called after __builtin_cpu_supports("avx2") and ("fma") said yes.
#include "cpu/gemm_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MG_AVX2 __attribute__((target("avx2,fma")))
#define MG_GEMM_TARGET MG_AVX2
#include "cpu/gemm_microkernel.h"

namespace mg::cpu::detail {
namespace {

MG_GEMM_VECTOR(Avx2F32, float, __m256, _mm256, ps);
MG_GEMM_VECTOR(Avx2F64, double, __m256d, _mm256, pd);

// A transposing packer: Block(s, ld, dk, w) transposes 4 rows x KB k of the source at s into
// the panel at dk (KB runs of 4 elements, w apart); the k past the last whole KB in each group of
// 4 rows, the leftover rows (rows % 4) and the zeros for rows up to w go element by element.
template <int KB, class T, void (*Block)(const T*, int64_t, T*, int)>
MG_AVX2 MG_ALWAYS_INLINE void pack_rows_by_4(const T* src, int64_t ld, int64_t rows, int64_t kc, int w, T* dst) {
  const int64_t rows4 = rows & ~int64_t(3), kvec = kc / KB * KB;
  for (int64_t g = 0; g < rows4; g += 4) {
    for (int64_t k = 0; k < kvec; k += KB) Block(src + g * ld + k, ld, dst + g + k * w, w);
    for (int64_t k = kvec; k < kc; ++k)
      for (int64_t j = 0; j < 4; ++j) dst[k * w + g + j] = src[(g + j) * ld + k];
  }
  for (int64_t r = rows4; r < rows; ++r) {
    const T* s = src + r * ld;
    for (int64_t k = 0; k < kc; ++k) dst[k * w + r] = s[k];
  }
  if (rows < w) {
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t r = rows; r < w; ++r) dst[k * w + r] = T(0);
  }
}

// f32: 4 rows x 8 k, transposed in registers and stored as 4-element runs.
MG_AVX2 MG_ALWAYS_INLINE void transpose_4x8_f32(const float* s, int64_t ld, float* dk, int w) {
  const __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ld);
  const __m256 r2 = _mm256_loadu_ps(s + 2 * ld), r3 = _mm256_loadu_ps(s + 3 * ld);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44);  // k, k+4
  const __m256 u1 = _mm256_shuffle_ps(t0, t2, 0xEE);  // k+1, k+5
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44);  // k+2, k+6
  const __m256 u3 = _mm256_shuffle_ps(t1, t3, 0xEE);  // k+3, k+7
  _mm_storeu_ps(dk + 0 * w, _mm256_castps256_ps128(u0));
  _mm_storeu_ps(dk + 1 * w, _mm256_castps256_ps128(u1));
  _mm_storeu_ps(dk + 2 * w, _mm256_castps256_ps128(u2));
  _mm_storeu_ps(dk + 3 * w, _mm256_castps256_ps128(u3));
  _mm_storeu_ps(dk + 4 * w, _mm256_extractf128_ps(u0, 1));
  _mm_storeu_ps(dk + 5 * w, _mm256_extractf128_ps(u1, 1));
  _mm_storeu_ps(dk + 6 * w, _mm256_extractf128_ps(u2, 1));
  _mm_storeu_ps(dk + 7 * w, _mm256_extractf128_ps(u3, 1));
}

// f64: 4 rows x 4 k.
MG_AVX2 MG_ALWAYS_INLINE void transpose_4x4_f64(const double* s, int64_t ld, double* dk, int w) {
  const __m256d r0 = _mm256_loadu_pd(s), r1 = _mm256_loadu_pd(s + ld);
  const __m256d r2 = _mm256_loadu_pd(s + 2 * ld), r3 = _mm256_loadu_pd(s + 3 * ld);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(dk + 0 * w, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(dk + 1 * w, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(dk + 2 * w, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(dk + 3 * w, _mm256_permute2f128_pd(t1, t3, 0x31));
}

}  // namespace

// Transposing packers: groups of 4 rows x 8 (f32) / 4 (f64) k are transposed in registers and
// stored as 4-element runs; leftover rows (rows % 4) and k (kc % 8 or % 4) go element by element.
MG_AVX2 void gemm_pack_rows_avx2_f32(const float* src, int64_t ld, int64_t rows, int64_t kc, int w, float* dst) {
  pack_rows_by_4<8, float, &transpose_4x8_f32>(src, ld, rows, kc, w, dst);
}

MG_AVX2 void gemm_pack_rows_avx2_f64(const double* src, int64_t ld, int64_t rows, int64_t kc, int w,
                                     double* dst) {
  pack_rows_by_4<4, double, &transpose_4x4_f64>(src, ld, rows, kc, w, dst);
}

GemmKernelSet gemm_kernels_avx2() {
  GemmKernelSet s;
  // Blocking: the 6 x kc A micro-panel and the kc x 16 B micro-panel stay in L1 (kc=256:
  // 6 KiB + 16 KiB); the packed kc x nc B block stays in L2; the mc x kc A block in L3.
  // f32 6x16: 12 accumulators + 2 B vectors + 1 broadcast; f64 6x8 likewise. K unrolled 4 times.
  s.f32 = {.fn = &gemm_microkernel<Avx2F32, 6, 4>, .mr = 6, .nr = 16, .kc = 256, .mc = 1 << 20, .nc = 512,
           .name = "avx2+fma 6x16", .pack_rows = &gemm_pack_rows_avx2_f32};
  s.f64 = {.fn = &gemm_microkernel<Avx2F64, 6, 4>, .mr = 6, .nr = 8, .kc = 256, .mc = 1 << 20, .nc = 256,
           .name = "avx2+fma 6x8", .pack_rows = &gemm_pack_rows_avx2_f64};
  s.ok = true;
  return s;
}

}  // namespace mg::cpu::detail

#endif  // x86-64 GCC/Clang (elsewhere gemm_kernels.cpp defines the empty kernel set)
