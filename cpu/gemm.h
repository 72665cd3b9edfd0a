#pragma once
// mixgrad's own CPU GEMM (packed, cache-blocked, GotoBLAS/BLIS style).
//
// Expects:
//   * Row-major storage. op(A) is [M,K]: A is stored [M,K] (row stride lda >= K), or [K,M]
//     (lda >= M) when trans_a. op(B) is [K,N]: B is stored [K,N] (ldb >= N), or [N,K]
//     (ldb >= K) when trans_b. C is [M,N] with ldc >= N. Strides are in elements.
//   * C must not alias A or B. M, N, K >= 0 (a zero M or N is a no-op).
//   * A and B need no particular alignment; they are only read.
// Guarantees:
//   * C[M,N] = alpha * op(A) * op(B) + beta * C. Only the M x N window of C is touched.
//   * beta == 0 means C is overwritten: its old contents (NaN/Inf included) are never read.
//     alpha == 0 or K == 0 gives C = beta * C without reading A or B.
//   * Accumulation is in the working precision (f32 for sgemm, f64 for dgemm; FMAs in the SIMD
//     kernels), summed over K in blocks of a few hundred; every element is within
//     gamma_{2K+3} * (|alpha| sum_k |a_ik b_kj| + |beta c_ij|) of the exact result
//     (gamma_n = n*u / (1 - n*u), u = unit roundoff; checked by tests/test_gemm.cpp).
//     Results are bitwise identical for any thread count, but not across ISAs (the kernel's K
//     block depth differs) nor to other BLAS libraries.
//   * Threads with OpenMP (omp_get_max_threads() threads, fewer for small problems) unless called
//     from inside an active parallel region, where it runs single-threaded on the caller. When the
//     machine is oversubscribed (parallel regions whose join stalls), GEMMs under ~0.5 GFLOP run
//     on the calling thread for a while; see cpu/gemm.cpp. Nothing stays pinned to a CPU.
//   * Packing buffers are kept per calling thread between calls (up to ~16 MiB each for packed
//     A and B, less for small problems).
//   * The SIMD micro-kernel is chosen at run time (AVX-512F, else AVX2+FMA, else portable C++);
//     the library itself need not be compiled with -march flags.
//   * Thread-safe: concurrent calls from different threads are fine (packing buffers are per thread).
#include <cstdint>

#include "core/backend.h"

namespace mg::cpu {

// Row-major: C[M,N] = alpha * op(A) * op(B) + beta * C, op(A) is [M,K] (A stored [K,M] when trans_a),
// op(B) is [K,N] (B stored [N,K] when trans_b). lda/ldb/ldc are row strides in elements.
// beta == 0 means C is overwritten (NaNs in C are ignored). Threads with OpenMP unless called
// from inside a parallel region (then runs single-threaded).
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
           const float* A, int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void dgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
           const double* A, int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// What happens to each finished tile of C while it is still in cache (cheaper than a pass over C
// afterwards): C[i, j] += bias[j] when bias is set, then D[i, j] = C[i, j] rounded to bf16 (raw
// bits, round to nearest even) when D is set. D has row stride ldd and batch stride stride_d.
struct GemmEpilogue {
  const float* bias = nullptr;
  uint16_t* D = nullptr;
  int64_t ldd = 0, stride_d = 0;
};

// Batched: batch independent GEMMs with element strides between consecutive A, B, C matrices
// (a stride of 0 broadcasts that operand; with stride_c == 0 the GEMMs run one after another in
// batch order on the same C). Parallelises over the batch when the matrices are small, the batch
// divides evenly among the threads, or it is long; otherwise each GEMM is threaded in turn.
// A batch on one C with beta 1 and no epilogue runs as one GEMM over the entries' K blocks in
// batch order (the same sums, one threaded pass) while the packed operands fit.
// tri (core/backend.h) skips the micro-kernel work outside the stated triangle: with a_lower or
// a_upper each MR-row tile of C runs only over the K range its rows can reach (with finite
// operands the result is bitwise the dense one's: the skipped products are zeros, while a dense
// GEMM turns 0 * inf into NaN); with c_lower the tiles wholly above the diagonal are not
// computed (their C and D are unspecified: usually left as they were).
void sgemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                   const float* A, int64_t lda, int64_t stride_a, const float* B, int64_t ldb, int64_t stride_b,
                   float beta, float* C, int64_t ldc, int64_t stride_c, int64_t batch, const GemmEpilogue& ep = {},
                   GemmTri tri = GemmTri::none);
void dgemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha,
                   const double* A, int64_t lda, int64_t stride_a, const double* B, int64_t ldb, int64_t stride_b,
                   double beta, double* C, int64_t ldc, int64_t stride_c, int64_t batch, GemmTri tri = GemmTri::none);

// bf16 operands (raw bfloat16 bits), f32 C, with sgemm_batched's layout, strides and threading.
// Each product of two bf16 values is exact in f32; they are accumulated in f32, two K steps per
// instruction (AVX512_BF16 vdpbf16ps, which flushes subnormal inputs and outputs to zero), so
// every element is within gamma_{2K+3}(2^-24) * (|alpha| sum_k |a_ik b_kj| + |beta c_ij|) of the
// exact result (sgemm's bound, tests/test_gemm.cpp), bitwise identical for any thread count but not to sgemm of the widened operands.
// Expects bf16gemm_native() (throws mg::Error otherwise; callers widen to f32 and call
// sgemm_batched where it is false).
bool bf16gemm_native();
void bf16gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                      int64_t lda, int64_t stride_a, const uint16_t* B, int64_t ldb, int64_t stride_b, float beta,
                      float* C, int64_t ldc, int64_t stride_c, int64_t batch, const GemmEpilogue& ep = {},
                      GemmTri tri = GemmTri::none);

// What the runtime dispatch picked for sgemm, e.g. "avx512f 14x32" (dgemm uses the same ISA).
const char* gemm_kernel_name();

}  // namespace mg::cpu
