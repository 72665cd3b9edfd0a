#pragma once
// The register-blocked GEMM micro-kernel of the SIMD kernel files (gemm_kernel_avx2.cpp,
// gemm_kernel_avx512.cpp), written once for every ISA and element type: an MR x NR tile of C
// (NR = two vectors) is accumulated in 2*MR registers over kc packed K steps, the K loop unrolled
// KU times, then C = alpha * acc + beta * C (beta == 0: C is not read). The contract is the one
// gemm_kernels.h states for a micro-kernel. Every accumulator sees its FMAs in K order, so the
// result is the same whatever the unrolling.
//
// V is the ISA's vector of T (MG_GEMM_VECTOR below): Reg, T, kLanes, and static functions
// zero(), load(p) (64-byte aligned), loadu(p), storeu(p, r), set1(x), fmadd(a, b, c) (a*b + c,
// one rounding) and mul(a, b).
//
// The including file defines MG_GEMM_TARGET, the target attribute of its ISA, before including
// this header. Everything here has internal linkage, so each kernel file compiles its own copy
// for its ISA; the library itself is built without -march flags.
#if !defined(MG_GEMM_TARGET)
#error "define MG_GEMM_TARGET (the kernel file's target attribute) before including cpu/gemm_microkernel.h"
#endif

#include <immintrin.h>

#include <cstdint>

#include "cpu/isa_dispatch.h"  // MG_ALWAYS_INLINE

// Defines NAME, the vector V of TYPE held in register type REG, from the regular names of the
// ISA's intrinsics: MG_GEMM_VECTOR(Avx2F32, float, __m256, _mm256, ps) uses _mm256_load_ps,
// _mm256_fmadd_ps, and so on.
#define MG_GEMM_VECTOR(NAME, TYPE, REG, PFX, SFX)                                              \
  struct NAME {                                                                                \
    using T = TYPE;                                                                            \
    using Reg = REG;                                                                           \
    static constexpr int kLanes = int(sizeof(REG) / sizeof(TYPE));                             \
    MG_GEMM_TARGET MG_ALWAYS_INLINE static Reg zero() { return PFX##_setzero_##SFX(); }        \
    MG_GEMM_TARGET MG_ALWAYS_INLINE static Reg load(const T* p) { return PFX##_load_##SFX(p); } \
    MG_GEMM_TARGET MG_ALWAYS_INLINE static Reg loadu(const T* p) { return PFX##_loadu_##SFX(p); } \
    MG_GEMM_TARGET MG_ALWAYS_INLINE static void storeu(T* p, Reg r) { PFX##_storeu_##SFX(p, r); } \
    MG_GEMM_TARGET MG_ALWAYS_INLINE static Reg set1(T x) { return PFX##_set1_##SFX(x); }       \
    MG_GEMM_TARGET MG_ALWAYS_INLINE static Reg fmadd(Reg a, Reg b, Reg c) {                    \
      return PFX##_fmadd_##SFX(a, b, c);                                                       \
    }                                                                                          \
    MG_GEMM_TARGET MG_ALWAYS_INLINE static Reg mul(Reg a, Reg b) { return PFX##_mul_##SFX(a, b); } \
  }

namespace mg::cpu::detail {
namespace {

// Zeroed accumulators, and the C tile prefetched while the K loop runs.
template <class V, int MR>
MG_GEMM_TARGET MG_ALWAYS_INLINE void tile_begin(typename V::Reg* c0, typename V::Reg* c1, const typename V::T* c,
                                                int64_t ldc) {
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    c0[i] = V::zero();
    c1[i] = V::zero();
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 2 * V::kLanes - 1), _MM_HINT_T0);
  }
}

// C = alpha * acc + beta * C over the MR x 2 vectors tile.
template <class V, int MR>
MG_GEMM_TARGET MG_ALWAYS_INLINE void tile_store(const typename V::Reg* c0, const typename V::Reg* c1,
                                                typename V::T* c, int64_t ldc, typename V::T alpha,
                                                typename V::T beta) {
  using T = typename V::T;
  constexpr int L = V::kLanes;
  const typename V::Reg va = V::set1(alpha);
  if (beta == T(0)) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      V::storeu(c + i * ldc, V::mul(va, c0[i]));
      V::storeu(c + i * ldc + L, V::mul(va, c1[i]));
    }
  } else if (beta == T(1)) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      V::storeu(c + i * ldc, V::fmadd(va, c0[i], V::loadu(c + i * ldc)));
      V::storeu(c + i * ldc + L, V::fmadd(va, c1[i], V::loadu(c + i * ldc + L)));
    }
  } else {
    const typename V::Reg vb = V::set1(beta);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      V::storeu(c + i * ldc, V::fmadd(va, c0[i], V::mul(vb, V::loadu(c + i * ldc))));
      V::storeu(c + i * ldc + L, V::fmadd(va, c1[i], V::mul(vb, V::loadu(c + i * ldc + L))));
    }
  }
}

// One K step: acc[i] += a[i] * b[0 .. NR) for the MR rows.
template <class V, int MR>
MG_GEMM_TARGET MG_ALWAYS_INLINE void tile_k_step(typename V::Reg* c0, typename V::Reg* c1, const typename V::T* a,
                                                 const typename V::T* b) {
  const typename V::Reg b0 = V::load(b);
  const typename V::Reg b1 = V::load(b + V::kLanes);
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) {
    const typename V::Reg ai = V::set1(a[i]);
    c0[i] = V::fmadd(ai, b0, c0[i]);
    c1[i] = V::fmadd(ai, b1, c1[i]);
  }
}

template <class V, int MR, int KU>
MG_GEMM_TARGET void gemm_microkernel(int64_t kc, const typename V::T* a, const typename V::T* b, typename V::T* c,
                                     int64_t ldc, typename V::T alpha, typename V::T beta) {
  constexpr int NR = 2 * V::kLanes;
  typename V::Reg c0[MR], c1[MR];
  tile_begin<V, MR>(c0, c1, c, ldc);
  int64_t k = 0;
  for (; k + KU <= kc; k += KU) {
#pragma GCC unroll 8
    for (int u = 0; u < KU; ++u) {
      _mm_prefetch(reinterpret_cast<const char*>(b + NR * 8), _MM_HINT_T0);
      // The next A micro-panel into L2: the driver packs A's panels one after another, so it
      // starts at a + MR*kc, and the kernel is its first reader. A panel of a deep K block
      // (48 KiB at MR = 12, kc = 1024 f32) does not fit in L1 and its first pass streamed from
      // L3 at the cost of the FMAs; one prefetch per k step covers it while the current panel
      // computes (its last reader fetches past the buffer: a prefetch never faults). 2048^3 on 2
      // threads: f32 389 -> 397, bf16 725 -> 790 GFLOP/s, the d=512 training steps +4-9%
      // (docs/benchmarks.md).
      _mm_prefetch(reinterpret_cast<const char*>(a + MR * kc), _MM_HINT_T1);
      tile_k_step<V, MR>(c0, c1, a, b);
      a += MR;
      b += NR;
    }
  }
  for (; k < kc; ++k) {
    tile_k_step<V, MR>(c0, c1, a, b);
    a += MR;
    b += NR;
  }
  tile_store<V, MR>(c0, c1, c, ldc, alpha, beta);
}

}  // namespace
}  // namespace mg::cpu::detail
