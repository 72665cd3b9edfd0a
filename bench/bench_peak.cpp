// mixgrad-bench peak: this CPU's arithmetic limits next to what mixgrad's GEMMs reach, so the
// training benchmarks' "fraction of peak" can be read against the hardware, not only the GEMM.
#include <omp.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bench/peak.h"
#include "cpu/gemm.h"

int bench_peak(int argc, char** argv) {
  int threads = omp_get_max_threads();
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: mixgrad-bench peak [--threads N]\n");
      return 2;
    }
  }
  omp_set_num_threads(threads);
  const double fma = mg::bench::fma_peak_gflops(threads), dot = mg::bench::bf16_dot_peak_gflops(threads);
  const double sg = mg::bench::sgemm_peak_gflops(), bg = mg::bench::bf16gemm_peak_gflops();
  std::printf("# %d threads; GFLOP/s (best of 7 runs each)\n", threads);
  std::printf("f32 FMA, registers only (avx512f)       %8.1f\n", fma);
  std::printf("bf16 dot, registers only (avx512bf16)   %8.1f\n", dot);
  std::printf("sgemm 2048^3 (%s)           %8.1f   %5.1f%% of the f32 FMA peak\n", mg::cpu::gemm_kernel_name(), sg,
              fma > 0 ? 100 * sg / fma : 0.0);
  std::printf("bf16 gemm 2048^3                        %8.1f   %5.1f%% of the bf16 dot peak\n", bg,
              dot > 0 ? 100 * bg / dot : 0.0);
  std::printf("# 0 = not available on this CPU\n");
  return 0;
}
