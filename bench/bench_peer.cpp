// mixgrad-bench peer: the configuration the comparisons give their peers on this machine (CPU,
// ISA, OpenBLAS core and how it was chosen) and a check that the peer's GEMM runs near this CPU's
// limit: OpenBLAS SGEMM at 2048^3 against the measured f32 FMA register peak. Below half of it,
// the peer is not at its best and the run says so (a misdetected core, threads fighting for the
// cores). --env prints only the shell line the compare scripts evaluate, so PyTorch (which loads
// the same libopenblas) runs with the same core.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bench/peak.h"
#include "bench/peer_config.h"

#ifdef MG_HAVE_OPENBLAS
#include <cblas.h>
#endif

int bench_peer(int argc, char** argv) {
  int threads = omp_get_max_threads();
  bool env_only = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--env")) {
      env_only = true;
    } else if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: mixgrad-bench peer [--threads N] [--env]\n");
      return 2;
    }
  }
  if (env_only) {
    const char* core = std::getenv("OPENBLAS_CORETYPE");
    if (core) std::printf("export OPENBLAS_CORETYPE=%s\n", core);
    return 0;
  }
  mg::bench::print_peer_config(stdout);
#ifdef MG_HAVE_OPENBLAS
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
  const int n = 2048;
  std::vector<float> a(size_t(n) * n, 0.5f), b(size_t(n) * n, 0.25f), c(size_t(n) * n);
  double best = 1e30;
  for (int r = 0; r < 4; ++r) {  // the first call pays for page faults and thread start
    const auto t0 = std::chrono::steady_clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const double blas = 2.0 * n * n * double(n) / best / 1e9;
  const double fma = mg::bench::fma_peak_gflops(threads);
  std::printf("# OpenBLAS SGEMM 2048^3: %.1f GFLOP/s on %d threads = %.0f%% of the f32 FMA peak %.1f GFLOP/s\n", blas,
              threads, 100.0 * blas / fma, fma);
  if (blas < 0.5 * fma) {
    std::printf("# WARNING: the peer's GEMM runs below half of this CPU's FMA peak: its figures are not its best "
                "(misdetected core? other load on the cores?); ratios against it flatter mixgrad\n");
  }
#else
  (void)threads;
#endif
  return 0;
}
