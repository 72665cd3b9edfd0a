// mixgrad-bench gemm [--threads N] [--reps R] [--only square|mixer] [--dtype f32|bf16]
// GFLOP/s of mg::cpu::sgemm against OpenBLAS cblas_sgemm (when built with MG_HAVE_OPENBLAS) on
// square sizes and on the GEMMs of one masked-mixer training step. --dtype bf16 times
// mg::cpu::bf16gemm_batched (bf16 A and B, f32 C) against our own sgemm on the same values in f32
// (Debian's OpenBLAS is built without its bf16 GEMM, cblas_sbgemm, so there is no library to race). Each number is the median of
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

#include "bench/peer_config.h"
#include "core/dtype.h"
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
void settle(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

// max |c - ref| / max |ref| over the whole result.
double max_rel_diff(const std::vector<float>& c, const std::vector<float>& ref) {
  double maxdiff = 0.0, maxref = 0.0;
  for (size_t i = 0; i < c.size(); ++i) {
    maxdiff = std::max(maxdiff, double(std::fabs(c[i] - ref[i])));
    maxref = std::max(maxref, double(std::fabs(ref[i])));
  }
  return maxref > 0 ? maxdiff / maxref : maxdiff;
}

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
               "usage: mixgrad-bench gemm [--threads N] [--reps R] [--only square|mixer] [--dtype f32|bf16]\n"
               "  --threads N  threads for mixgrad (OpenMP) and OpenBLAS (default: omp_get_max_threads())\n"
               "  --reps R     timed samples per measurement, median reported (default 5)\n"
               "  --only S     only the square sizes (S=square) or the masked-mixer shapes (S=mixer)\n"
               "  --dtype D    f32 (default) or bf16 (needs an AVX512_BF16 CPU)\n");
}

}  // namespace

int bench_gemm(int argc, char** argv) {
  int threads = omp_get_max_threads();
  int reps = 5;
  std::string only, dtype = "f32";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if ((a == "--threads" || a == "-t") && i + 1 < argc) {
      threads = std::atoi(argv[++i]);
    } else if ((a == "--reps" || a == "-r") && i + 1 < argc) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--only" && i + 1 < argc) {
      only = argv[++i];
    } else if (a == "--dtype" && i + 1 < argc) {
      dtype = argv[++i];
    } else {
      usage();
      return a == "-h" || a == "--help" ? 0 : 2;
    }
  }
  const bool bf16 = dtype == "bf16";
  if (threads < 1 || reps < 1 || (dtype != "f32" && !bf16)) {
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

  if (bf16 && !mg::cpu::bf16gemm_native()) {
    std::printf("no native bf16 GEMM on this CPU (AVX512_BF16 missing): nothing to measure\n");
    return 0;
  }
  std::printf("mixgrad %s kernel: %s | threads: %d | reps: %d (median)\n", bf16 ? "bf16 gemm" : "sgemm",
              bf16 ? "avx512bf16 12x32" : mg::cpu::gemm_kernel_name(), threads, reps);
  if (bf16) {
    std::printf("%-26s %2s %5s %5s %5s %3s | %8s %8s %6s | %9s\n", "shape", "op", "M", "N", "K", "b", "bf16",
                "f32", "ratio", "max rel");
    std::printf("%-26s %2s %5s %5s %5s %3s | %8s %8s %6s | %9s\n", "", "", "", "", "", "", "GFLOP/s", "GFLOP/s",
                "b/f", "diff");
  }
#ifdef MG_HAVE_OPENBLAS
  if (!bf16) {
    std::printf("OpenBLAS: %s\n", openblas_get_config());
    mg::bench::print_peer_config(stdout);
  }
  if (!bf16) {
    std::printf("%-26s %2s %5s %5s %5s %3s | %8s %8s %6s | %9s\n", "shape", "op", "M", "N", "K", "b", "ours",
                "OpenBLAS", "ratio", "max rel");
    std::printf("%-26s %2s %5s %5s %5s %3s | %8s %8s %6s | %9s\n", "", "", "", "", "", "", "GFLOP/s", "GFLOP/s",
                "o/b", "diff");
  }
#else
  if (!bf16) {
    std::printf("(built without OpenBLAS: no comparison)\n");
    std::printf("%-26s %2s %5s %5s %5s %3s | %8s\n", "shape", "op", "M", "N", "K", "b", "GFLOP/s");
  }
#endif

  std::mt19937 rng(1234);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  double ratio_sum_log = 0.0;
  int ratio_count = 0;
  for (const Shape& s : shapes) {
    const int64_t M = s.M, N = s.N, K = s.K, nb = s.batch;
    const int64_t lda = s.ta ? M : K, ldb = s.tb ? K : N, ldc = N;
    const int64_t sa = s.bcast_a ? 0 : M * K, sb = K * N, sc = M * N;
    std::vector<float> A(std::max<int64_t>(sa, M * K) * (s.bcast_a ? 1 : nb)), B(sb * nb), C(sc * nb),
        C2(sc * nb);
    for (float& x : A) x = dist(rng);
    for (float& x : B) x = dist(rng);
    // bf16: the same values rounded to bf16.
    auto to_bf16 = [](const std::vector<float>& v) {
      std::vector<uint16_t> out(v.size());
      for (size_t i = 0; i < v.size(); ++i) out[i] = mg::bf16::from_float(v[i]);
      return out;
    };
    const std::vector<uint16_t> A16 = bf16 ? to_bf16(A) : std::vector<uint16_t>(),
                                B16 = bf16 ? to_bf16(B) : std::vector<uint16_t>();
    const double flops = 2.0 * double(M) * double(N) * double(K) * double(nb);

    auto ours = [&] {
      if (bf16) {
        mg::cpu::bf16gemm_batched(s.ta, s.tb, M, N, K, 1.0f, A16.data(), lda, sa, B16.data(), ldb, sb, 0.0f,
                                  C.data(), ldc, sc, nb);
      } else if (nb == 1) {
        mg::cpu::sgemm(s.ta, s.tb, M, N, K, 1.0f, A.data(), lda, B.data(), ldb, 0.0f, C.data(), ldc);
      } else {
        mg::cpu::sgemm_batched(s.ta, s.tb, M, N, K, 1.0f, A.data(), lda, sa, B.data(), ldb, sb, 0.0f, C.data(),
                               ldc, sc, nb);
      }
    };
    const char op[3] = {s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', 0};
    if (bf16) {  // ours in bf16 vs ours in f32 on the same (bf16-valued) data
      std::vector<float> Af(A16.size()), Bf(B16.size());
      for (size_t i = 0; i < A16.size(); ++i) Af[i] = mg::bf16::to_float(A16[i]);
      for (size_t i = 0; i < B16.size(); ++i) Bf[i] = mg::bf16::to_float(B16[i]);
      auto f32 = [&] {
        mg::cpu::sgemm_batched(s.ta, s.tb, M, N, K, 1.0f, Af.data(), lda, sa, Bf.data(), ldb, sb, 0.0f, C2.data(),
                               ldc, sc, nb);
      };
      std::vector<double> t_ours, t_f32;
      for (int r = 0; r < reps; ++r) {
        settle(30);
        t_ours.push_back(sample(ours));
        settle(30);
        t_f32.push_back(sample(f32));
      }
      const double g_ours = flops / median(t_ours) * 1e-9, g_f32 = flops / median(t_f32) * 1e-9;
      ratio_sum_log += std::log(g_ours / g_f32);
      ++ratio_count;
      std::printf("%-26s %2s %5lld %5lld %5lld %3lld | %8.1f %8.1f %6.3f | %9.2e\n", s.name.c_str(), op,
                  (long long)M, (long long)N, (long long)K, (long long)nb, g_ours, g_f32, g_ours / g_f32,
                  max_rel_diff(C, C2));
      std::fflush(stdout);
      continue;
    }
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
    const double g_ours = flops / median(t_ours) * 1e-9, g_blas = flops / median(t_blas) * 1e-9;
    const double ratio = g_ours / g_blas;
    ratio_sum_log += std::log(ratio);
    ++ratio_count;
    std::printf("%-26s %2s %5lld %5lld %5lld %3lld | %8.1f %8.1f %6.3f | %9.2e\n", s.name.c_str(), op,
                (long long)M, (long long)N, (long long)K, (long long)nb, g_ours, g_blas, ratio, max_rel_diff(C, C2));
#else
    std::vector<double> t_ours;
    for (int r = 0; r < reps; ++r) t_ours.push_back(sample(ours));
    std::printf("%-26s %2s %5lld %5lld %5lld %3lld | %8.1f\n", s.name.c_str(), op, (long long)M, (long long)N,
                (long long)K, (long long)nb, flops / median(t_ours) * 1e-9);
#endif
    std::fflush(stdout);
  }
  if (bf16) {
    std::printf("geometric mean ratio bf16/f32: %.3f\n", std::exp(ratio_sum_log / std::max(ratio_count, 1)));
    std::printf("GFLOP/s: median of %d samples, alternating. max rel diff: bf16 vs f32 GEMM of the same bf16 values\n"
                "(both accumulate in f32; they differ only in summation rounding).\n", reps);
    return 0;
  }
#ifdef MG_HAVE_OPENBLAS
  if (ratio_count > 0) std::printf("geometric mean ratio ours/OpenBLAS: %.3f\n", std::exp(ratio_sum_log / ratio_count));
  std::printf("GFLOP/s: median of %d samples (each: untimed call, then timed call), libraries interleaved.\n"
              "max rel diff = max|ours - OpenBLAS| / max|OpenBLAS| over C (f32 rounding: ~1e-7 * sqrt(K)).\n",
              reps);
#endif
  return 0;
}
