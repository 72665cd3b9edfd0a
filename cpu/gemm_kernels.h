#pragma once
// Internal to cpu/gemm*.cpp (and the GEMM tests): micro-kernel table and run-time dispatch.
//
// A micro-kernel computes one MR x NR tile of C from packed panels:
//   a: kc x MR, stored k-major (a[k*MR + i] = op(A)[i, k]), any alignment
//   b: kc x NR, stored k-major (b[k*NR + j] = op(B)[k, j]), 64-byte aligned
//   C[i*ldc + j] = alpha * sum_k a[k*MR+i] * b[k*NR+j] + beta * C[i*ldc + j]   (all MR x NR)
// beta == 0 overwrites C without reading it. kc >= 0 (0: C = beta * C, a and b unread; the
// driver passes it for tiles that a triangle hint leaves nothing to add).
#include <cstdint>

namespace mg::cpu::detail {

// In: the element type of A and B in memory; U: the packed unit the kernel reads; O: C's type.
// For f32/f64 all three are the same. For bf16, U packs two bf16 values adjacent in K into 32
// bits (low half k even, high half k odd; a missing odd k is zero), so `kc` of a bf16 kernel
// counts K pairs, and C is f32.
template <class U, class O>
using gemm_ukernel_fn = void (*)(int64_t kc, const U* a, const U* b, O* c, int64_t ldc, O alpha, O beta);

// Packs `rows` (<= w) rows of a row-major matrix into a k-major panel of width w:
//   dst[k*w + r] = src[r*ld + k] for r < rows, k < kc; zero for rows <= r < w.
// (op(A) panels when A is not transposed, op(B) panels when B is transposed.) nullptr: portable
// code. kc counts elements of In; for bf16 the panel holds ceil(kc/2) units per row.
template <class In, class U>
using gemm_pack_rows_fn = void (*)(const In* src, int64_t ld, int64_t rows, int64_t kc, int w, U* dst);

template <class In, class U, class O>
struct GemmKernelOf {
  gemm_ukernel_fn<U, O> fn = nullptr;
  int mr = 0, nr = 0;          // register tile
  // Blocking. kc: K block depth in elements of In (the MR x kc A micro-panel stays in L1). mc:
  // most rows of op(A) packed at once (a row band; normally unlimited, gemm.cpp also caps the
  // packed bytes). nc: widest column block of a task (its kc x nc slice of packed op(B) stays in L2).
  int kc = 0, mc = 0, nc = 0;
  // When set, a task's column block shrinks as its K block deepens, so its slice of packed op(B)
  // (KC x nc in packed bytes) stays within this many bytes of L2; nc remains the widest, NR the
  // narrowest. A deep kc then costs no L2 misses on B, and deep K blocks are what save C's
  // read-modify-write passes (one per K block).
  int64_t b_slice_bytes = 0;
  const char* name = "";
  gemm_pack_rows_fn<In, U> pack_rows = nullptr;
};
template <class T>
using GemmKernel = GemmKernelOf<T, T, T>;
// bf16 A and B (raw bits), f32 C: products of bf16 values are exact in f32 and are accumulated in
// f32, two K steps per instruction (AVX512_BF16's vdpbf16ps).
using GemmKernelBf16 = GemmKernelOf<uint16_t, uint32_t, float>;

// Kernel sets per ISA; `ok` is false when the ISA is not compiled in.
struct GemmKernelSet {
  GemmKernel<float> f32;
  GemmKernel<double> f64;
  GemmKernelBf16 bf16;  // fn == nullptr: this ISA (or CPU) has no native bf16 kernel
  bool ok = false;
};
GemmKernelSet gemm_kernels_avx2();    // requires avx2+fma at run time
GemmKernelSet gemm_kernels_avx512();  // requires avx512f at run time

// AVX2 transposing packers (4x4 register transposes); need avx2 at run time.
void gemm_pack_rows_avx2_f32(const float* src, int64_t ld, int64_t rows, int64_t kc, int w, float* dst);
void gemm_pack_rows_avx2_f64(const double* src, int64_t ld, int64_t rows, int64_t kc, int w, double* dst);

// Prefetches every cache line of the n elements at row (copy-type packers fetch the source rows a
// few K steps ahead: rows a multiple of 4 KiB apart defeat the hardware prefetchers, which stop at
// pages).
template <class T>
inline void gemm_prefetch_row(const T* row, int64_t n) {
  constexpr int64_t line = 64 / int64_t(sizeof(T));
  for (int64_t j = 0; j < n; j += line) __builtin_prefetch(row + j);
  __builtin_prefetch(row + n - 1);
}

// Copy-type bf16 packer (see gemm_kernel_avx512.cpp); needs avx512f, used only with its kernel.
void gemm_pack_copy_bf16(const uint16_t* src, int64_t ld, int64_t ncols, int64_t kc, int w, uint32_t* dst);

// The kernels the public entry points use. Chosen on first use from __builtin_cpu_supports, or
// from the environment variable MG_GEMM_ISA=scalar|avx2|avx512 when set (for testing).
const GemmKernelSet& gemm_active_kernels();

// Force an ISA ("scalar", "avx2", "avx512", or nullptr/"auto" for the CPU's best). Returns false
// (and changes nothing) when the CPU lacks it. Not thread-safe with concurrent GEMM calls; meant
// for tests and benchmarks.
bool gemm_force_isa(const char* isa);

// Enables/disables the native bf16 kernel (on by default where the CPU has AVX512_BF16); when off,
// or absent, cpu::bf16gemm_batched widens the operands to f32 and runs sgemm. For tests.
void gemm_set_native_bf16(bool enabled);

// True when the running CPU supports the ISA ("scalar" always; also "avx512bf16").
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
