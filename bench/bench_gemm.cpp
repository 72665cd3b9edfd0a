// mixgrad-bench gemm [--threads N] [--reps R] [--only square|mixer]
// GFLOP/s of mg::cpu::sgemm against OpenBLAS cblas_sgemm (when built with MG_HAVE_OPENBLAS) on
// square sizes and on the GEMMs of one masked-mixer training step. Each number is the median of
// R samples (each an untimed call, then a timed one); ours and OpenBLAS alternate sample by sample
// on the same data, with a short idle gap so neither library's spinning workers slow the other.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cpu/gemm.h"

#ifdef MG_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace {

struct Shape {
  std::string name;
  bool ta, tb;
  int64_t M, N, K, batch;
  bool bcast_a;  // batched with stride_a == 0 (shared weight)
};

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// One sample: an untimed call (wakes the thread pool, faults pages in, warms packing buffers),
// then the timed call.
template <class F>
double sample(F&& f) {
  f();
  const double t0 = now_s();
  f();
  return now_s() - t0;
}

// Idle gap between the two libraries' samples. Both keep their worker threads spinning after a
// call and would steal cores from the other library: libgomp for a few ms (measured ~7 ms of CPU
// here), OpenBLAS for ~0.1 s (2^28 cycles by default; measured ~85 ms of CPU).
[[maybe_unused]] void settle(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

std::string fmt(const char* f, long long a) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, a);
  return buf;
}

std::vector<Shape> mixer_shapes(int64_t d) {
  // Masked mixer, batch 8, n_ctx 512, vocab 4096 -> 4096 tokens. Linear layers store weights as
  // [out, in] (forward X W^T = "NT"), backward dX = dY W ("NN") and dW = dY^T X ("TN").
  const int64_t B = 8, T = 512, V = 4096, R = B * T, F = 4 * d;
  const std::string s = fmt("d%lld ", static_cast<long long>(d));
  return {
      {s + "mix fwd  Wm*X_b", false, false, T, d, T, B, true},     // [512x512]x[512xd], shared Wm
      {s + "mix bwd  Wm^T*dY_b", true, false, T, d, T, B, true},   // dX_b
      {s + "mix bwd  dY_b*X_b^T", false, true, T, T, d, B, false}, // dWm per sequence
      {s + "ff1 fwd  X*W1^T", false, true, R, F, d, 1, false},
      {s + "ff1 bwd  dH*W1", false, false, R, d, F, 1, false},
      {s + "ff1 bwd  dH^T*X", true, false, F, d, R, 1, false},
      {s + "ff2 fwd  H*W2^T", false, true, R, d, F, 1, false},
      {s + "ff2 bwd  dY*W2", false, false, R, F, d, 1, false},
      {s + "ff2 bwd  dY^T*H", true, false, d, F, R, 1, false},
      {s + "lm  fwd  X*Wh^T", false, true, R, V, d, 1, false},
      {s + "lm  bwd  dL*Wh", false, false, R, d, V, 1, false},
      {s + "lm  bwd  dL^T*X", true, false, V, d, R, 1, false},
  };
}

void usage() {
  std::fprintf(stderr,
               "usage: mixgrad-bench gemm [--threads N] [--reps R] [--only square|mixer]\n"
               "  --threads N  threads for mixgrad (OpenMP) and OpenBLAS (default: omp_get_max_threads())\n"
               "  --reps R     timed samples per measurement, median reported (default 5)\n"
               "  --only S     only the square sizes (S=square) or the masked-mixer shapes (S=mixer)\n");
}

}  // namespace

int bench_gemm(int argc, char** argv) {
  int threads = omp_get_max_threads();
  int reps = 5;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--threads" || a == "-t") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if ((a == "--reps" || a == "-r") && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else {
      usage();
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  if (threads < 1 || reps < 1) {
    usage();
    return 2;
  }
  omp_set_num_threads(threads);
#ifdef MG_HAVE_OPENBLAS
  openblas_set_num_threads(threads);
#endif

  std::vector<Shape> shapes;
  if (only.empty() || only == "square") {
    for (int64_t n : {256, 512, 1024, 1536, 2048}) {
      shapes.push_back({fmt("square %lld", static_cast<long long>(n)), false, false, n, n, n, 1, false});
    }
  }
  if (only.empty() || only == "mixer") {
    for (int64_t d : {256, 512}) {
      for (const Shape& s : mixer_shapes(d)) shapes.push_back(s);
    }
  }

  std::printf("mixgrad sgemm kernel: %s | threads: %d | reps: %d (median)\n", mg::cpu::gemm_kernel_name(), threads,
              reps);
#ifdef MG_HAVE_OPENBLAS
  std::printf("OpenBLAS: %s\n", openblas_get_config());
  std::printf("%-26s %2s %5s %5s %5s %3s | %8s %8s %6s | %9s\n", "shape", "op", "M", "N", "K", "b", "ours",
              "OpenBLAS", "ratio", "max rel");
  std::printf("%-26s %2s %5s %5s %5s %3s | %8s %8s %6s | %9s\n", "", "", "", "", "", "", "GFLOP/s", "GFLOP/s",
              "o/b", "diff");
#else
  std::printf("(built without OpenBLAS: no comparison)\n");
  std::printf("%-26s %2s %5s %5s %5s %3s | %8s\n", "shape", "op", "M", "N", "K", "b", "GFLOP/s");
#endif

  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  [[maybe_unused]] double ratio_sum_log = 0.0;
  [[maybe_unused]] int ratio_count = 0;
  for (const Shape& s : shapes) {
    const int64_t M = s.M, N = s.N, K = s.K, nb = s.batch;
    const int64_t lda = s.ta ? M : K, ldb = s.tb ? K : N, ldc = N;
    const int64_t sa = s.bcast_a ? 0 : M * K, sb = K * N, sc = M * N;
    std::vector<float> A(std::max<int64_t>(sa, M * K) * (s.bcast_a ? 1 : nb)), B(sb * nb), C(sc * nb),
        C2(sc * nb);
    for (float& x : A) x = dist(rng);
    for (float& x : B) x = dist(rng);
    const double flops = 2.0 * double(M) * double(N) * double(K) * double(nb);

    auto ours = [&] {
      if (nb == 1) {
        mg::cpu::sgemm(s.ta, s.tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), ldc);
      } else {
        mg::cpu::sgemm_batched(s.ta, s.tb, M, N, K, 1.0f, A.data(), lda, sa, B.data(), ldb, sb, 0.0f, C.data(),
                               ldc, sc, nb);
      }
    };
    const char op[3] = {s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', 0};
#ifdef MG_HAVE_OPENBLAS
    auto blas = [&] {
      for (int64_t b = 0; b < nb; ++b) {
        cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, int(M),
                    int(N), int(K), 1.0f, A.data() + b * sa, int(lda), B.data() + b * sb, int(ldb), 0.0f,
                    C2.data() + b * sc, int(ldc));
      }
    };
    // Interleave the libraries sample by sample so both see the same background load.
    std::vector<double> t_ours, t_blas;
    for (int r = 0; r < reps; ++r) {
      settle(150);  // after OpenBLAS
      t_ours.push_back(sample(ours));
      settle(30);  // after libgomp
      t_blas.push_back(sample(blas));
    }
    double maxdiff = 0.0, maxref = 0.0;
    for (size_t i = 0; i < C.size(); ++i) {
      maxdiff = std::max(maxdiff, double(std::fabs(C[i] - C2[i])));
      maxref = std::max(maxref, double(std::fabs(C2[i])));
    }
    const double g_ours = flops / median(t_ours) * 1e-9, g_blas = flops / median(t_blas) * 1e-9;
    const double ratio = g_ours / g_blas;
    ratio_sum_log += std::log(ratio);
    ++ratio_count;
    std::printf("%-26s %2s %5lld %5lld %5lld %3lld | %8.1f %8.1f %6.3f | %9.2e\n", s.name.c_str(), op,
                (long long)M, (long long)N, (long long)K, (long long)nb, g_ours, g_blas, ratio,
                maxref > 0 ? maxdiff / maxref : maxdiff);
#else
    std::vector<double> t_ours;
    for (int r = 0; r < reps; ++r) t_ours.push_back(sample(ours));
    std::printf("%-26s %2s %5lld %5lld %5lld %3lld | %8.1f\n", s.name.c_str(), op, (long long)M, (long long)N,
                (long long)K, (long long)nb, flops / median(t_ours) * 1e-9);
#endif
    std::fflush(stdout);
  }
#ifdef MG_HAVE_OPENBLAS
  if (ratio_count > 0) std::printf("geometric mean ratio ours/OpenBLAS: %.3f\n", std::exp(ratio_sum_log / ratio_count));
  std::printf("GFLOP/s: median of %d samples (each: untimed call, then timed call), libraries interleaved.\n"
              "max rel diff = max|ours - OpenBLAS| / max|OpenBLAS| over C (f32 rounding: ~1e-7 * sqrt(K)).\n",
              reps);
#endif
  return 0;
}
