// mixgrad-bench attention-memory: peak memory of the fused causal attention, forward and
// forward+backward, at T = 256..2048 (B=8, H=8, Dh=32). Peak tensor memory comes from the CPU
// allocator's accounting; the process's peak RSS is shown too (it also covers the kernels'
// per-thread scratch). A kernel that materialised the score matrix would need B*H*T^2*4 bytes,
// printed beside them for scale.
#include <omp.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstring>

#include "cpu/cpu_allocator.h"
#include "ops/ops.h"

using namespace mg;

namespace {
double max_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}
double mib(size_t b) { return double(b) / (1024.0 * 1024.0); }
}  // namespace

int bench_attention_memory(int argc, char** argv) {
  int threads = 2;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else {
      std::fprintf(stderr, "bench attention-memory: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  omp_set_num_threads(threads);
  const int64_t B = 8, H = 8, Dh = 32;
  std::printf("# causal attention peak memory, B=8 H=8 Dh=32 f32, %d threads (MiB)\n", threads);
  std::printf("# %-6s %10s %14s %14s %14s %16s\n", "T", "inputs", "fwd_extra", "fwd+bwd_extra", "max_rss",
              "T^2_scores");
  for (int64_t T : {256, 512, 1024, 2048}) {
    Tensor q = randn({B, H, T, Dh}, 1).set_requires_grad(true);
    Tensor k = randn({B, H, T, Dh}, 2).set_requires_grad(true);
    Tensor v = randn({B, H, T, Dh}, 3).set_requires_grad(true);
    Tensor g = randn({B, H, T, Dh}, 4);
    const size_t base = cpu::host_cache_stats().bytes_in_use;
    cpu::host_reset_peak();
    Tensor out = scaled_dot_product_attention(q, k, v, true);
    const size_t fwd_peak = cpu::host_cache_stats().peak_bytes_in_use - base;
    out.backward(g);
    const size_t all_peak = cpu::host_cache_stats().peak_bytes_in_use - base;
    const double inputs = mib(size_t(4 * B * H * T * Dh * 4));
    std::printf("%-8lld %10.1f %14.1f %14.1f %14.1f %16.1f\n", (long long)T, inputs, mib(fwd_peak), mib(all_peak),
                max_rss_mib(), mib(size_t(B * H * T * T * 4)));
    std::fflush(stdout);
  }
  return 0;
}
