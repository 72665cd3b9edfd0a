#include "bench/peak.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "cpu/gemm.h"
#include "ops/peak.h"
#include "cpu/gemm_kernels.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

namespace mg::bench {
namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

constexpr int64_t kIters = 10000000;  // per thread: ~0.1 s of 512-bit FMAs at ~3.5 GHz

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f"))) float sum_chains(const __m512* acc) {
  alignas(64) float lanes[16];
  float s = 0;
  for (int i = 0; i < 12; ++i) {
    _mm512_store_ps(lanes, acc[i]);
    for (float v : lanes) s += v;
  }
  return s;
}

// 12 chains: enough to cover the FMA latency on two pipes. Returns a value that depends on every
// chain so the compiler keeps them.
__attribute__((target("avx512f"))) float fma_chains(float seed) {
  __m512 acc[12];
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(seed);
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(seed + float(i));
  for (int64_t k = 0; k < kIters; ++k) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], m, c);
  }
  return sum_chains(acc);
}

__attribute__((target("avx512f,avx512bf16"))) float bf16_chains(float seed) {
  __m512 acc[12];
  const __m512bh a = (__m512bh)_mm512_set1_epi32(0x3f803f80), b = (__m512bh)_mm512_set1_epi32(0x3a803a80);
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_set1_ps(seed + float(i));
  for (int64_t k = 0; k < kIters; ++k) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  return sum_chains(acc);
}
#endif

// Best of 7 timings of fn on every thread at once (a peak: the fastest run is the one least
// disturbed by the machine's other work); flops_per_call per thread.
template <class F>
double rate(int threads, double flops_per_call, F fn) {
  double best = 0;
  volatile float sink = 0;
  for (int r = 0; r < 7; ++r) {
    const double t0 = now_s();
    float s = 0;
#pragma omp parallel num_threads(threads) reduction(+ : s)
    s += fn(float(omp_get_thread_num() + 1));
    const double t = now_s() - t0;
    sink = sink + s;
    best = std::max(best, flops_per_call * threads / t / 1e9);
  }
  return best;
}

// A peak, so the fastest of 7 calls: on a shared machine the median moves with the load (measured:
// 178-205 GFLOP/s for the same SGEMM within minutes), the best much less.
template <class F>
double gemm_rate(F call) {
  call();  // packing buffers, page faults
  double best = 1e30;
  for (int r = 0; r < 7; ++r) {
    const double s = now_s();
    call();
    best = std::min(best, now_s() - s);
  }
  const double n = 2048;
  return 2.0 * n * n * n / best / 1e9;
}

enum class Chains { fma, bf16_dot };

// The rate of the chains on every thread, or 0 where the CPU lacks their instructions.
double chains_peak_gflops(Chains which, int threads) {
#if defined(__x86_64__) && defined(__GNUC__)
  if (which == Chains::fma && cpu::detail::gemm_isa_supported("avx512"))
    return rate(threads, 2.0 * 16 * 12 * double(kIters), [](float s) { return fma_chains(s); });
  if (which == Chains::bf16_dot && cpu::detail::gemm_isa_supported("avx512bf16"))
    return rate(threads, 4.0 * 16 * 12 * double(kIters), [](float s) { return bf16_chains(s); });
#endif
  (void)which;
  (void)threads;
  return 0;
}

}  // namespace

double fma_peak_gflops(int threads) { return chains_peak_gflops(Chains::fma, threads); }
double bf16_dot_peak_gflops(int threads) { return chains_peak_gflops(Chains::bf16_dot, threads); }

// The library's measurement (ops/peak.h), which the profiler reports against too.
double sgemm_peak_gflops() { return gemm_peak_gflops(kCPU, DType::f32); }

double bf16gemm_peak_gflops() {
  if (!cpu::bf16gemm_native()) return 0;
  const int64_t n = 2048;
  std::vector<uint16_t> a(size_t(n * n), 0x3f80), b(size_t(n * n), 0x3f00);
  std::vector<float> c(size_t(n * n));
  return gemm_rate([&] {
    cpu::bf16gemm_batched(false, false, n, n, n, 1.0f, a.data(), n, 0, b.data(), n, 0, 0.0f, c.data(), n, 0, 1);
  });
}

}  // namespace mg::bench
