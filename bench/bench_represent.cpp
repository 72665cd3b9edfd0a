// mixgrad-bench represent: input-gradient steps per second of the input-representation test
// (experiments/representation.cpp, docs/paper.md D, Algorithm 1). One step is exactly recover_input's:
// with every parameter frozen (requires_grad off), forward the input embeddings e [B, T, D]
// through all L blocks, summed L1 against the target activations, backward to e, e -= lr * grad.
// bench/torch_represent.py runs the same step in PyTorch; bench/compare_represent.sh prints ratios.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "nn/lm.h"
#include "ops/ops.h"

using namespace mg;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Setup {
  std::string kind = "masked_mixer";
  int64_t d = 256, layers = 8, ctx = 512, vocab = 4096;
  int steps = 3, reps = 5, warmup = 2;
};

// Median steps/s of `reps` runs of `steps` steps each, after `warmup` untimed steps.
double steps_per_second(const Setup& s, int64_t B) {
  ModelConfig c;
  c.kind = parse_model_kind(s.kind);
  c.d_model = s.d;
  c.n_layers = s.layers;
  c.n_ctx = s.ctx;
  c.vocab_size = s.vocab;
  c.n_heads = 4;
  Generator gen(0);
  auto model = make_model(c, gen);
  for (Tensor& p : model->parameters()) p.set_requires_grad(false);

  const int layer = int(s.layers);
  Tensor ids = randint(0, int32_t(c.vocab_size), {B, c.n_ctx}, 1);
  Tensor target;
  Tensor e;
  {
    NoGradGuard no_grad;
    Tensor emb = model->embed(ids);
    target = model->forward_embeddings(emb, layer, false).detach();
    e = randn(emb.shape(), 2);
  }
  const double eta = 0.02;
  double last_loss = 0;
  auto step = [&] {
    e.set_requires_grad(true);
    Tensor loss = l1_loss(model->forward_embeddings(e, layer, false), target, Reduction::sum);
    last_loss = loss.item();
    loss.backward();
    NoGradGuard no_grad;
    e = sub(e, mul(e.grad(), eta)).detach();
  };
  for (int i = 0; i < s.warmup; ++i) step();
  std::vector<double> rate;
  for (int r = 0; r < s.reps; ++r) {
    const double t0 = now_s();
    for (int i = 0; i < s.steps; ++i) step();
    rate.push_back(double(s.steps) / (now_s() - t0));
  }
  std::sort(rate.begin(), rate.end());
  std::fprintf(stderr, "# %s B=%lld final loss %.6g\n", s.kind.c_str(), (long long)B, last_loss);
  return rate[rate.size() / 2];
}

}  // namespace

int bench_represent(int argc, char** argv) {
  int threads = 2;
  Setup s;
  std::vector<int64_t> batches{1, 8};
  std::vector<std::string> kinds{"masked_mixer"};
  for (int i = 1; i < argc; ++i) {
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* a = argv[i];
    const char* v = nullptr;
    if (!std::strcmp(a, "--threads") && (v = next())) threads = std::atoi(v);
    else if (!std::strcmp(a, "--reps") && (v = next())) s.reps = std::atoi(v);
    else if (!std::strcmp(a, "--steps") && (v = next())) s.steps = std::atoi(v);
    else if (!std::strcmp(a, "--warmup") && (v = next())) s.warmup = std::atoi(v);
    else if (!std::strcmp(a, "--d") && (v = next())) s.d = std::atoll(v);
    else if (!std::strcmp(a, "--layers") && (v = next())) s.layers = std::atoll(v);
    else if (!std::strcmp(a, "--ctx") && (v = next())) s.ctx = std::atoll(v);
    else if (!std::strcmp(a, "--batch") && (v = next())) batches = {std::atoll(v)};
    else if (!std::strcmp(a, "--kind") && (v = next())) {
      const std::string k = v;
      if (k == "all") kinds = {"masked_mixer", "llama"};
      else if (k == "mixer" || k == "masked_mixer") kinds = {"masked_mixer"};
      else if (k == "llama") kinds = {"llama"};
      else {
        std::fprintf(stderr, "bench represent: --kind must be mixer, llama or all, got '%s'\n", v);
        return 2;
      }
    } else {
      std::fprintf(stderr, "bench represent: unknown or incomplete argument '%s'\n", a);
      return 2;
    }
  }
  if (s.reps < 1 || s.steps < 1 || s.warmup < 0 || threads < 1) {
    std::fprintf(stderr, "bench represent: --reps, --steps and --threads must be >= 1, --warmup >= 0\n");
    return 2;
  }
  omp_set_num_threads(threads);
  std::printf("# mixgrad input-representation step (fwd to layer L, L1, bwd to e, e -= lr*grad), frozen weights,\n"
              "# V=%lld n_ctx=%lld, %d threads, median over %d reps of %d steps (after %d warmup)\n",
              (long long)s.vocab, (long long)s.ctx, threads, s.reps, s.steps, s.warmup);
  std::printf("# %-22s %10s %10s\n", "model", "steps/s", "ms/step");
  for (const std::string& kind : kinds) {
    for (int64_t B : batches) {
      Setup k = s;
      k.kind = kind;
      const std::string name = std::string(kind == "llama" ? "llama" : "mixer") + "_d" + std::to_string(s.d) + "_L" +
                               std::to_string(s.layers) + "_b" + std::to_string(B);
      const double sps = steps_per_second(k, B);
      std::printf("%-24s %10.3f %10.2f\n", name.c_str(), sps, 1e3 / sps);
      std::fflush(stdout);
    }
  }
  return 0;
}
