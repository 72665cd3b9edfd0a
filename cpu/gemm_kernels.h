#pragma once
// Internal to cpu/gemm*.cpp (and the GEMM tests): micro-kernel table and run-time dispatch.
//
// A micro-kernel computes one MR x NR tile of C from packed panels:
//   a: kc x MR, stored k-major (a[k*MR + i] = op(A)[i, k]), any alignment
//   b: kc x NR, stored k-major (b[k*NR + j] = op(B)[k, j]), 64-byte aligned
//   C[i*ldc + j] = alpha * sum_k a[k*MR+i] * b[k*NR+j] + beta * C[i*ldc + j]   (all MR x NR)
// beta == 0 overwrites C without reading it. kc >= 1.
#include <cstdint>

namespace mg::cpu::detail {

template <class T>
using gemm_ukernel_fn = void (*)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta);

// Packs `rows` (<= w) rows of a row-major matrix into a k-major panel of width w:
//   dst[k*w + r] = src[r*ld + k] for r < rows, k < kc; zero for rows <= r < w.
// (op(A) panels when A is not transposed, op(B) panels when B is transposed.) nullptr: portable code.
template <class T>
using gemm_pack_rows_fn = void (*)(const T* src, int64_t ld, int64_t rows, int64_t kc, int w, T* dst);

template <class T>
struct GemmKernel {
  gemm_ukernel_fn<T> fn = nullptr;
  int mr = 0, nr = 0;          // register tile
  // Blocking. kc: K block depth (the MR x kc A micro-panel stays in L1). mc: most rows of op(A)
  // packed at once (a row band; normally unlimited, gemm.cpp also caps the packed bytes). nc:
  // widest column block of a task (its kc x nc slice of packed op(B) stays in L2).
  int kc = 0, mc = 0, nc = 0;
  const char* name = "";
  gemm_pack_rows_fn<T> pack_rows = nullptr;
};

// Kernel sets per ISA; `ok` is false when the ISA is not compiled in.
struct GemmKernelSet {
  GemmKernel<float> f32;
  GemmKernel<double> f64;
  bool ok = false;
};
GemmKernelSet gemm_kernels_avx2();    // requires avx2+fma at run time
GemmKernelSet gemm_kernels_avx512();  // requires avx512f at run time

// AVX2 transposing packers (4x4 register transposes); need avx2 at run time.
void gemm_pack_rows_avx2_f32(const float* src, int64_t ld, int64_t rows, int64_t kc, int w, float* dst);
void gemm_pack_rows_avx2_f64(const double* src, int64_t ld, int64_t rows, int64_t kc, int w, double* dst);

// The kernels the public entry points use. Chosen on first use from __builtin_cpu_supports, or
// from the environment variable MG_GEMM_ISA=scalar|avx2|avx512 when set (for testing).
const GemmKernelSet& gemm_active_kernels();

// Force an ISA ("scalar", "avx2", "avx512", or nullptr/"auto" for the CPU's best). Returns false
// (and changes nothing) when the CPU lacks it. Not thread-safe with concurrent GEMM calls; meant
// for tests and benchmarks.
bool gemm_force_isa(const char* isa);

// True when the running CPU supports the ISA ("scalar" always).
bool gemm_isa_supported(const char* isa);

// Override the kernel's cache blocking (0 keeps the kernel's value for that parameter) and, with
// private_b, pack op(B) per task instead of once shared (the path taken when B is very large).
// Lets the tests push small matrices through every code path. Same caveat as gemm_force_isa.
void gemm_force_blocking(int kc, int mc, int nc, bool private_b = false);

// Enables/disables the contention guard of cpu/gemm.cpp (on by default): after a parallel region
// whose join was slow, small GEMMs run single-threaded for a while. Tests turn it off so the
// threaded paths always run.
void gemm_set_contention_guard(bool enabled);

}  // namespace mg::cpu::detail
