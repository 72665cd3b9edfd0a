// mixgrad-bench train: tokens/s of a full training step (forward, backward, AdamW) for the
// paper's masked mixer and the Llama-style transformer at B=8, n_ctx=512, vocab 4096, 8 layers,
// d = 256 and 512, and the fraction of this machine's measured SGEMM peak each reaches.
// bench/torch_train.py runs the same models in PyTorch; bench/compare_train.sh prints ratios.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/gemm.h"
#include "nn/lm.h"
#include "nn/optim.h"
#include "ops/ops.h"

using namespace mg;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Matmul FLOPs of one forward pass (the backward is counted as twice this).
double forward_flops(const ModelConfig& c, int64_t B) {
  const double d = double(c.d_model), n = double(c.n_ctx), V = double(c.vocab_size), L = double(c.n_layers);
  const double f = double(c.ffn_mult);
  const double tokens = double(B) * n;
  double per_layer;
  if (c.kind == ModelKind::masked_mixer) {
    // FF (2 * d * f*d weights) per token + lower-triangular token mixing (n^2/2 MACs per feature).
    per_layer = tokens * 2.0 * (2.0 * f * d * d) + double(B) * d * n * n;
  } else {
    // q, k, v, o + SwiGLU (3 * d * f*d) per token + causal QK^T and PV (n^2/2 MACs per feature each).
    per_layer = tokens * 2.0 * (4.0 * d * d + 3.0 * f * d * d) + double(B) * 2.0 * d * n * n;
  }
  return L * per_layer + tokens * 2.0 * d * V;
}

double sgemm_peak_gflops() {
  const int64_t n = 2048;
  std::vector<float> a(size_t(n * n), 1.0f), b(size_t(n * n), 0.5f), c(size_t(n * n));
  cpu::sgemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
  std::vector<double> t;
  for (int r = 0; r < 3; ++r) {
    double s = now_s();
    cpu::sgemm(false, false, n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n);
    t.push_back(now_s() - s);
  }
  std::sort(t.begin(), t.end());
  return 2.0 * double(n) * double(n) * double(n) / t[1] / 1e9;
}

}  // namespace

int bench_train(int argc, char** argv) {
  int threads = 2, reps = 3;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else {
      std::fprintf(stderr, "bench train: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  omp_set_num_threads(threads);
  const int64_t B = 8;
  const double peak = sgemm_peak_gflops();
  std::printf("# mixgrad train step (fwd+bwd+AdamW), B=8 n_ctx=512 V=4096 L=8, %d threads, median of %d\n", threads,
              reps);
  std::printf("# measured SGEMM peak (2048^3): %.1f GFLOP/s\n", peak);
  std::printf("# %-16s %12s %10s %12s %10s\n", "model", "step_s", "tokens/s", "GFLOP/s", "of_peak");
  for (const char* kind : {"masked_mixer", "llama"}) {
    for (int64_t d : {256, 512}) {
      std::string name = std::string(kind == std::string("llama") ? "llama" : "mixer") + "_d" + std::to_string(d);
      if (!only.empty() && name.find(only) == std::string::npos) continue;
      ModelConfig c;
      c.kind = parse_model_kind(kind);
      c.d_model = d;
      c.n_layers = 8;
      c.n_ctx = 512;
      c.vocab_size = 4096;
      c.n_heads = 4;
      Generator gen(0);
      auto model = make_model(c, gen);
      AdamW opt(model->parameters(), AdamWOptions{1e-4, 0.9, 0.999, 1e-8, 0.0});
      Tensor ids = randint(0, int32_t(c.vocab_size), {B, c.n_ctx}, 1);
      auto step = [&] {
        Tensor loss = lm_loss(model->forward(ids), ids, -1);
        loss.backward();
        clip_grad_norm(model->parameters(), 1.0);
        opt.step();
        opt.zero_grad();
      };
      step();
      std::vector<double> t;
      for (int r = 0; r < reps; ++r) {
        double s = now_s();
        step();
        t.push_back(now_s() - s);
      }
      std::sort(t.begin(), t.end());
      const double med = t[t.size() / 2];
      const double gflops = 3.0 * forward_flops(c, B) / med / 1e9;
      std::printf("%-18s %12.3f %10.0f %12.1f %9.1f%%\n", name.c_str(), med, double(B * c.n_ctx) / med, gflops,
                  100.0 * gflops / peak);
      std::fflush(stdout);
    }
  }
  return 0;
}
