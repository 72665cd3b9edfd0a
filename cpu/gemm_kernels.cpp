// Portable GEMM micro-kernels and the run-time ISA dispatch.
#include "cpu/gemm_kernels.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace mg::cpu::detail {

#if !(defined(__x86_64__) && defined(__GNUC__))
// The SIMD kernel files compile to nothing here: no kernel sets, and packers that are never
// installed.
GemmKernelSet gemm_kernels_avx2() { return {}; }
GemmKernelSet gemm_kernels_avx512() { return {}; }
void gemm_pack_rows_avx2_f32(const float*, int64_t, int64_t, int64_t, int, float*) {}
void gemm_pack_rows_avx2_f64(const double*, int64_t, int64_t, int64_t, int, double*) {}
void gemm_pack_copy_bf16(const uint16_t*, int64_t, int64_t, int64_t, int, uint32_t*) {}
#endif

namespace {

// Portable MR x NR kernel (plain C++; the compiler may vectorise it with the baseline ISA).
template <class T, int MR, int NR>
void gemm_scalar_kernel(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, T alpha, T beta) {
  T acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i) {
      const T ai = a[i];
      for (int j = 0; j < NR; ++j) acc[i][j] += ai * b[j];
    }
    a += MR;
    b += NR;
  }
  for (int i = 0; i < MR; ++i) {
    T* ci = c + i * ldc;
    if (beta == T(0)) {
      for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j];
    } else {
      for (int j = 0; j < NR; ++j) ci[j] = alpha * acc[i][j] + beta * ci[j];
    }
  }
}

struct Dispatch {
  GemmKernelSet scalar, avx2, avx512;
  std::atomic<const GemmKernelSet*> active{nullptr};
  const GemmKernelSet* best = nullptr;

  Dispatch() {
    scalar.f32 = {.fn = &gemm_scalar_kernel<float, 4, 8>, .mr = 4, .nr = 8, .kc = 256, .mc = 1 << 20, .nc = 512,
                  .name = "scalar 4x8"};
    scalar.f64 = {.fn = &gemm_scalar_kernel<double, 4, 4>, .mr = 4, .nr = 4, .kc = 256, .mc = 1 << 20, .nc = 512,
                  .name = "scalar 4x4"};
    scalar.ok = true;
    if (gemm_isa_supported("avx2")) avx2 = gemm_kernels_avx2();
    if (gemm_isa_supported("avx512")) avx512 = gemm_kernels_avx512();
    best = avx512.ok ? &avx512 : avx2.ok ? &avx2 : &scalar;
    const GemmKernelSet* pick = best;
    if (const char* env = std::getenv("MG_GEMM_ISA")) {
      if (const GemmKernelSet* s = lookup(env)) pick = s;
    }
    active.store(pick);
  }

  const GemmKernelSet* lookup(const char* isa) const {
    if (isa == nullptr || std::strcmp(isa, "auto") == 0 || std::strcmp(isa, "") == 0) return best;
    if (std::strcmp(isa, "scalar") == 0) return &scalar;
    if (std::strcmp(isa, "avx2") == 0) return avx2.ok ? &avx2 : nullptr;
    if (std::strcmp(isa, "avx512") == 0 || std::strcmp(isa, "avx512f") == 0) return avx512.ok ? &avx512 : nullptr;
    return nullptr;
  }
};

Dispatch& dispatch() {
  static Dispatch d;
  return d;
}

}  // namespace

bool gemm_isa_supported(const char* isa) {
  if (isa == nullptr || std::strcmp(isa, "scalar") == 0 || std::strcmp(isa, "auto") == 0) return true;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (std::strcmp(isa, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (std::strcmp(isa, "avx512") == 0 || std::strcmp(isa, "avx512f") == 0)
    return __builtin_cpu_supports("avx512f");
  if (std::strcmp(isa, "avx512bf16") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
#endif
  return false;
}

const GemmKernelSet& gemm_active_kernels() { return *dispatch().active.load(std::memory_order_acquire); }

bool gemm_force_isa(const char* isa) {
  Dispatch& d = dispatch();
  const GemmKernelSet* s = d.lookup(isa);
  if (s == nullptr) return false;
  d.active.store(s, std::memory_order_release);
  return true;
}

}  // namespace mg::cpu::detail
