// AVX2+FMA GEMM micro-kernels. Compiled with function-level target attributes so the library
// needs no -march flag; only called after __builtin_cpu_supports("avx2") and ("fma") said yes.
#include "cpu/gemm_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MG_AVX2 __attribute__((target("avx2,fma")))

namespace mg::cpu::detail {
namespace {

// f32: 6 rows x 16 columns (two ymm per row) -> 12 accumulators + 2 B vectors + 1 broadcast.
MG_AVX2 void sgemm_avx2_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, float alpha,
                             float beta) {
  constexpr int MR = 6;
  __m256 c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    c0[i] = _mm256_setzero_ps();
    c1[i] = _mm256_setzero_ps();
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 15), _MM_HINT_T0);
  }
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) {
      _mm_prefetch(reinterpret_cast<const char*>(b + 16 * 8), _MM_HINT_T0);
      const __m256 b0 = _mm256_load_ps(b);
      const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m256 ai = _mm256_broadcast_ss(a + i);
        c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
        c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
      }
      a += MR;
      b += 16;
    }
  }
  for (; k < kc; ++k) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      c0[i] = _mm256_fmadd_ps(ai, b0, c0[i]);
      c1[i] = _mm256_fmadd_ps(ai, b1, c1[i]);
    }
    a += MR;
    b += 16;
  }
  const __m256 va = _mm256_set1_ps(alpha);
  if (beta == 0.0f) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      _mm256_storeu_ps(c + i * ldc, _mm256_mul_ps(va, c0[i]));
      _mm256_storeu_ps(c + i * ldc + 8, _mm256_mul_ps(va, c1[i]));
    }
  } else if (beta == 1.0f) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      _mm256_storeu_ps(c + i * ldc, _mm256_fmadd_ps(va, c0[i], _mm256_loadu_ps(c + i * ldc)));
      _mm256_storeu_ps(c + i * ldc + 8, _mm256_fmadd_ps(va, c1[i], _mm256_loadu_ps(c + i * ldc + 8)));
    }
  } else {
    const __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      _mm256_storeu_ps(c + i * ldc, _mm256_fmadd_ps(va, c0[i], _mm256_mul_ps(vb, _mm256_loadu_ps(c + i * ldc))));
      _mm256_storeu_ps(c + i * ldc + 8,
                       _mm256_fmadd_ps(va, c1[i], _mm256_mul_ps(vb, _mm256_loadu_ps(c + i * ldc + 8))));
    }
  }
}

// f64: 6 rows x 8 columns (two ymm of 4 doubles per row).
MG_AVX2 void dgemm_avx2_6x8(int64_t kc, const double* a, const double* b, double* c, int64_t ldc, double alpha,
                            double beta) {
  constexpr int MR = 6;
  __m256d c0[MR], c1[MR];
#pragma GCC unroll 8
  for (int i = 0; i < MR; ++i) {
    c0[i] = _mm256_setzero_pd();
    c1[i] = _mm256_setzero_pd();
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 7), _MM_HINT_T0);
  }
  int64_t k = 0;
  for (; k + 4 <= kc; k += 4) {
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) {
      _mm_prefetch(reinterpret_cast<const char*>(b + 8 * 8), _MM_HINT_T0);
      const __m256d b0 = _mm256_load_pd(b);
      const __m256d b1 = _mm256_load_pd(b + 4);
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const __m256d ai = _mm256_broadcast_sd(a + i);
        c0[i] = _mm256_fmadd_pd(ai, b0, c0[i]);
        c1[i] = _mm256_fmadd_pd(ai, b1, c1[i]);
      }
      a += MR;
      b += 8;
    }
  }
  for (; k < kc; ++k) {
    const __m256d b0 = _mm256_load_pd(b);
    const __m256d b1 = _mm256_load_pd(b + 4);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      const __m256d ai = _mm256_broadcast_sd(a + i);
      c0[i] = _mm256_fmadd_pd(ai, b0, c0[i]);
      c1[i] = _mm256_fmadd_pd(ai, b1, c1[i]);
    }
    a += MR;
    b += 8;
  }
  const __m256d va = _mm256_set1_pd(alpha);
  if (beta == 0.0) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      _mm256_storeu_pd(c + i * ldc, _mm256_mul_pd(va, c0[i]));
      _mm256_storeu_pd(c + i * ldc + 4, _mm256_mul_pd(va, c1[i]));
    }
  } else if (beta == 1.0) {
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      _mm256_storeu_pd(c + i * ldc, _mm256_fmadd_pd(va, c0[i], _mm256_loadu_pd(c + i * ldc)));
      _mm256_storeu_pd(c + i * ldc + 4, _mm256_fmadd_pd(va, c1[i], _mm256_loadu_pd(c + i * ldc + 4)));
    }
  } else {
    const __m256d vb = _mm256_set1_pd(beta);
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i) {
      _mm256_storeu_pd(c + i * ldc, _mm256_fmadd_pd(va, c0[i], _mm256_mul_pd(vb, _mm256_loadu_pd(c + i * ldc))));
      _mm256_storeu_pd(c + i * ldc + 4,
                       _mm256_fmadd_pd(va, c1[i], _mm256_mul_pd(vb, _mm256_loadu_pd(c + i * ldc + 4))));
    }
  }
}

}  // namespace

// Transposing packers: groups of 4 rows x 8 (f32) / 4 (f64) k are transposed in registers and
// stored as 4-element runs; leftover rows (rows % 4) and k (kc % 8 or % 4) go element by element.
MG_AVX2 void gemm_pack_rows_avx2_f32(const float* src, int64_t ld, int64_t rows, int64_t kc, int w, float* dst) {
  const int64_t rows4 = rows & ~int64_t(3);
  const int64_t kc8 = kc & ~int64_t(7);
  for (int64_t g = 0; g < rows4; g += 4) {
    const float* s0 = src + g * ld;
    const float* s1 = s0 + ld;
    const float* s2 = s1 + ld;
    const float* s3 = s2 + ld;
    float* d = dst + g;
    for (int64_t k = 0; k < kc8; k += 8) {
      const __m256 r0 = _mm256_loadu_ps(s0 + k), r1 = _mm256_loadu_ps(s1 + k);
      const __m256 r2 = _mm256_loadu_ps(s2 + k), r3 = _mm256_loadu_ps(s3 + k);
      const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
      const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
      const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44);  // k, k+4
      const __m256 u1 = _mm256_shuffle_ps(t0, t2, 0xEE);  // k+1, k+5
      const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44);  // k+2, k+6
      const __m256 u3 = _mm256_shuffle_ps(t1, t3, 0xEE);  // k+3, k+7
      float* dk = d + k * w;
      _mm_storeu_ps(dk + 0 * w, _mm256_castps256_ps128(u0));
      _mm_storeu_ps(dk + 1 * w, _mm256_castps256_ps128(u1));
      _mm_storeu_ps(dk + 2 * w, _mm256_castps256_ps128(u2));
      _mm_storeu_ps(dk + 3 * w, _mm256_castps256_ps128(u3));
      _mm_storeu_ps(dk + 4 * w, _mm256_extractf128_ps(u0, 1));
      _mm_storeu_ps(dk + 5 * w, _mm256_extractf128_ps(u1, 1));
      _mm_storeu_ps(dk + 6 * w, _mm256_extractf128_ps(u2, 1));
      _mm_storeu_ps(dk + 7 * w, _mm256_extractf128_ps(u3, 1));
    }
    for (int64_t k = kc8; k < kc; ++k) {
      d[k * w + 0] = s0[k];
      d[k * w + 1] = s1[k];
      d[k * w + 2] = s2[k];
      d[k * w + 3] = s3[k];
    }
  }
  for (int64_t r = rows4; r < rows; ++r) {
    const float* s = src + r * ld;
    for (int64_t k = 0; k < kc; ++k) dst[k * w + r] = s[k];
  }
  if (rows < w) {
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t r = rows; r < w; ++r) dst[k * w + r] = 0.0f;
  }
}

MG_AVX2 void gemm_pack_rows_avx2_f64(const double* src, int64_t ld, int64_t rows, int64_t kc, int w,
                                     double* dst) {
  const int64_t rows4 = rows & ~int64_t(3);
  const int64_t kc4 = kc & ~int64_t(3);
  for (int64_t g = 0; g < rows4; g += 4) {
    const double* s0 = src + g * ld;
    const double* s1 = s0 + ld;
    const double* s2 = s1 + ld;
    const double* s3 = s2 + ld;
    double* d = dst + g;
    for (int64_t k = 0; k < kc4; k += 4) {
      const __m256d r0 = _mm256_loadu_pd(s0 + k), r1 = _mm256_loadu_pd(s1 + k);
      const __m256d r2 = _mm256_loadu_pd(s2 + k), r3 = _mm256_loadu_pd(s3 + k);
      const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
      const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
      double* dk = d + k * w;
      _mm256_storeu_pd(dk + 0 * w, _mm256_permute2f128_pd(t0, t2, 0x20));
      _mm256_storeu_pd(dk + 1 * w, _mm256_permute2f128_pd(t1, t3, 0x20));
      _mm256_storeu_pd(dk + 2 * w, _mm256_permute2f128_pd(t0, t2, 0x31));
      _mm256_storeu_pd(dk + 3 * w, _mm256_permute2f128_pd(t1, t3, 0x31));
    }
    for (int64_t k = kc4; k < kc; ++k) {
      d[k * w + 0] = s0[k];
      d[k * w + 1] = s1[k];
      d[k * w + 2] = s2[k];
      d[k * w + 3] = s3[k];
    }
  }
  for (int64_t r = rows4; r < rows; ++r) {
    const double* s = src + r * ld;
    for (int64_t k = 0; k < kc; ++k) dst[k * w + r] = s[k];
  }
  if (rows < w) {
    for (int64_t k = 0; k < kc; ++k)
      for (int64_t r = rows; r < w; ++r) dst[k * w + r] = 0.0;
  }
}

GemmKernelSet gemm_kernels_avx2() {
  GemmKernelSet s;
  // Blocking: the 6 x kc A micro-panel and the kc x 16 B micro-panel stay in L1 (kc=256:
  // 6 KiB + 16 KiB); the packed kc x nc B block stays in L2; the mc x kc A block in L3.
  s.f32 = {&sgemm_avx2_6x16, 6, 16, 256, 1 << 20, 512, "avx2+fma 6x16", &gemm_pack_rows_avx2_f32};
  s.f64 = {&dgemm_avx2_6x8, 6, 8, 256, 1 << 20, 256, "avx2+fma 6x8", &gemm_pack_rows_avx2_f64};
  s.ok = true;
  return s;
}

}  // namespace mg::cpu::detail

#else  // not x86-64 GCC/Clang

namespace mg::cpu::detail {
GemmKernelSet gemm_kernels_avx2() { return {}; }
void gemm_pack_rows_avx2_f32(const float*, int64_t, int64_t, int64_t, int, float*) {}
void gemm_pack_rows_avx2_f64(const double*, int64_t, int64_t, int64_t, int, double*) {}
}  // namespace mg::cpu::detail

#endif
