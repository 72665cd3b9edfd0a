// mixgrad-bench train: tokens/s of a full training step (forward, backward, grad-norm clip, AdamW)
// for the paper's masked mixer and the Llama-style transformer at B=8, n_ctx=512, vocab 4096,
// 8 layers, d = 256 and 512, and the fraction of a peak each reaches: on the CPU this machine's
// measured GEMM peak (SGEMM, or the bf16 GEMM for --precision bf16 where the CPU has AVX512_BF16;
// the register-only FMA peak is printed beside it, see mixgrad-bench peak), on CUDA a nominal
// peak (--peak-tflops, default H100 SXM dense bf16).
// --precision bf16 runs forward and loss under AutocastGuard and backward, clip and AdamW outside
// it on the f32 master weights, exactly as experiments/trainer.cpp does for train.precision bf16.
// bench/torch_train.py runs the same models in PyTorch; bench/compare_train.sh (CPU) and
// bench/compare_train_gpu.sh (CUDA) print ratios.
#include <malloc.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <sstream>
#include <string>
#include <vector>

#include "core/autocast.h"
#include "core/backend.h"
#include "bench/peak.h"
#include "bench/peer_config.h"
#include "bench/process_memory.h"
#include "cpu/cpu_allocator.h"
#include "cpu/gemm.h"
#include "nn/lm.h"
#include "nn/optim.h"
#include "ops/ops.h"

using namespace mg;

namespace {

// H100 SXM5 dense (no sparsity) bf16 tensor-core peak, NVIDIA's datasheet figure.
constexpr double kDefaultCudaPeakTflops = 989.0;

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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::vector<int64_t> parse_widths(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const int64_t d = std::atoll(item.c_str());
    MG_CHECK(d > 0, "--d expects a comma-separated list of positive widths, got '", s, "'");
    out.push_back(d);
  }
  MG_CHECK(!out.empty(), "--d is empty");
  return out;
}

struct Options {
  int threads = 2, reps = 3, warmup = -1;  // warmup -1: 1 step on the CPU, 3 on CUDA
  int64_t batch = 8;
  // The model's shape (the defaults are the benchmark's; --n-ctx 2048 --layers 8 --d 1024 --batch 1
  // is the paper's memory row, docs/paper.md C.10).
  int64_t n_ctx = 512, layers = 8, vocab = 4096, heads = 4;
  std::string only, device = "cpu", precision = "f32", widths = "256,512";
  double peak_tflops = 0;  // 0: measured GEMM peak on the CPU, kDefaultCudaPeakTflops on CUDA
  bool phases = false;
  bool memory = false;  // --memory: where the step's memory goes
};

int run(const Options& o) {
  const Device dev = parse_device(o.device);
  MG_CHECK(o.precision == "f32" || o.precision == "bf16", "--precision must be f32 or bf16, got '",
           o.precision, "'");
  MG_CHECK(o.reps >= 1 && o.batch >= 1, "--reps and --batch must be >= 1");
  MG_CHECK(o.n_ctx >= 1 && o.layers >= 1 && o.vocab >= 2 && o.heads >= 1,
           "--n-ctx, --layers and --heads must be >= 1 and --vocab >= 2, got ", o.n_ctx, ", ", o.layers, ", ",
           o.heads, " and ", o.vocab);
  const std::vector<int64_t> widths = parse_widths(o.widths);
  Backend& backend = backend_for(dev);  // throws naming the reason when the device is not usable
  const bool bf16 = o.precision == "bf16";
  const int warmup = o.warmup >= 0 ? o.warmup : dev.is_cuda() ? 3 : 1;
  omp_set_num_threads(o.threads);
  const int64_t B = o.batch;
  // Kernels are queued asynchronously on CUDA: a time is read only after the device has drained.
  auto synced_now = [&] {
    backend.synchronize();
    return now_s();
  };

  // The peak in GFLOP/s, and the unit rates are printed in (GFLOP/s on the CPU, TFLOP/s on CUDA).
  double peak_gflops;
  const double unit = dev.is_cuda() ? 1e12 : 1e9;
  const char* unit_name = dev.is_cuda() ? "TFLOP/s" : "GFLOP/s";
  const std::string prec = bf16 ? ", bf16 autocast" : "";
  if (dev.is_cuda()) {
    std::printf("# mixgrad train step (fwd+bwd+AdamW), B=%lld n_ctx=%lld V=%lld L=%lld h=%lld, %s%s, median of %d "
                "(synchronised, after %d warm-up steps)\n",
                (long long)B, (long long)o.n_ctx, (long long)o.vocab, (long long)o.layers, (long long)o.heads,
                dev.str().c_str(), bf16 ? " bf16 autocast" : " f32 (no TF32)", o.reps, warmup);
    const double p = o.peak_tflops > 0 ? o.peak_tflops : kDefaultCudaPeakTflops;
    std::printf("# peak: %.1f TFLOP/s (%s)\n", p,
                o.peak_tflops > 0 ? "--peak-tflops" : "default: H100 SXM dense bf16; set --peak-tflops for another GPU");
    peak_gflops = p * 1e3;
  } else {
    std::printf("# mixgrad train step (fwd+bwd+AdamW), B=%lld n_ctx=%lld V=%lld L=%lld h=%lld, %d threads%s, median of "
                "%d\n",
                (long long)B, (long long)o.n_ctx, (long long)o.vocab, (long long)o.layers, (long long)o.heads, o.threads, prec.c_str(), o.reps);
    bench::print_peer_config(stdout);
    if (o.peak_tflops > 0) {
      peak_gflops = o.peak_tflops * 1e3;
      std::printf("# peak: %.1f GFLOP/s (--peak-tflops)\n", peak_gflops);
    } else {
      // of_peak is against the GEMM this precision runs on (the bf16 kernel where the CPU has one).
      const double bgemm = bf16 ? bench::bf16gemm_peak_gflops() : 0;
      peak_gflops = bgemm > 0 ? bgemm : bench::sgemm_peak_gflops();
      std::printf("# measured %s peak (2048^3): %.1f GFLOP/s; f32 FMA register peak: %.1f GFLOP/s\n",
                  bgemm > 0 ? "bf16 GEMM" : "SGEMM", peak_gflops, bench::fma_peak_gflops(o.threads));
    }
  }
  // Peak memory per model: the allocator's high-water mark of bytes held by tensors (device
  // memory on CUDA), and the process's peak resident set (libraries and cached blocks included),
  // each reset before the model is built, so every row's figures are its own.
  std::printf("# %-16s %12s %10s %12s %10s %10s %10s\n", "model", "step_s", "tokens/s", unit_name, "of_peak",
              "alloc_MiB", "rss_MiB");
  std::fflush(stdout);

  for (const char* kind : {"masked_mixer", "llama"}) {
    for (int64_t d : widths) {
      std::string name = std::string(kind == std::string("llama") ? "llama" : "mixer") + "_d" + std::to_string(d);
      if (!o.only.empty() && name.find(o.only) == std::string::npos) continue;
      if (!dev.is_cuda()) {
        cpu::host_empty_cache();  // the previous model's cached blocks
        malloc_trim(0);
      }
      bench::reset_peak_rss();
      backend.reset_peak_memory();
      ModelConfig c;
      c.kind = parse_model_kind(kind);
      c.d_model = d;
      c.n_layers = o.layers;
      c.n_ctx = o.n_ctx;
      c.vocab_size = o.vocab;
      c.n_heads = o.heads;
      Generator gen(0);
      auto model = make_model(c, gen, TensorOptions{DType::f32, dev, false});
      AdamW opt(model->parameters(), AdamWOptions{1e-4, 0.9, 0.999, 1e-8, 0.0});
      Tensor ids = randint(0, int32_t(c.vocab_size), {B, c.n_ctx}, 1, TensorOptions{DType::i32, dev});
      // The allocator's high-water mark at the end of the first backward: forward + backward alone
      // (weights, saved activations, gradients, temporaries), before any optimizer state exists
      // -- what the paper's memory table measures (docs/paper.md C.10).
      double fwd_bwd_peak = -1;
      // One step; with `marks`, the device is drained after each phase and the clock read into it
      // (forward+loss, backward, clip, AdamW+zero_grad).
      auto step = [&](double* marks) {
        Tensor loss;
        {
          AutocastGuard autocast(bf16);
          loss = lm_loss(model->forward(ids), ids, -1);
        }
        if (marks) marks[0] = synced_now();
        loss.backward();
        if (fwd_bwd_peak < 0) {
          backend.synchronize();
          fwd_bwd_peak = double(backend.memory_stats().peak_bytes_in_use);
        }
        if (marks) marks[1] = synced_now();
        clip_grad_norm(model->parameters(), 1.0);
        if (marks) marks[2] = synced_now();
        opt.step();
        opt.zero_grad();
        if (marks) marks[3] = synced_now();
      };
      for (int w = 0; w < warmup; ++w) step(nullptr);
      std::vector<double> t;
      for (int r = 0; r < o.reps; ++r) {
        const double s = synced_now();
        step(nullptr);
        t.push_back(synced_now() - s);
      }
      const double med = median(t);
      const double rate = 3.0 * forward_flops(c, B) / med;
      const double mib = 1024.0 * 1024.0;
      std::printf(dev.is_cuda() ? "%-18s %12.5f %10.0f %12.1f %9.1f%% %10.0f %10.0f\n"
                                : "%-18s %12.3f %10.0f %12.1f %9.1f%% %10.0f %10.0f\n",
                  name.c_str(), med, double(B * c.n_ctx) / med, rate / unit, 100.0 * rate / (peak_gflops * 1e9),
                  backend.memory_stats().peak_bytes_in_use / mib, bench::peak_rss_bytes() / mib);
      std::printf("#   %s forward+backward peak (first step, no optimizer state yet): %.0f MiB allocated\n", name.c_str(),
                  fwd_bwd_peak / mib);
      if (o.memory) {
        // One more step, read phase by phase. Weights and their gradients are counted from the
        // tensors; the rest are differences of the allocator's bytes in use:
        //   optimizer state = in use between steps - weights - the batch (AdamW's m and v);
        //   saved = what the forward added (activations kept for backward, the logits, the loss);
        //   workspace = the step's peak - (weights + optimizer + saved + gradients): temporaries
        //   of backward beyond the saved tensors and gradients (negative when saved tensors are
        //   freed before the last gradients appear, i.e. the two never all coexist).
        auto bytes_of = [](const Tensor& t) { return double(t.numel()) * double(dtype_size(t.dtype())); };
        double weights = 0, grads = 0;
        for (const Tensor& p : model->parameters()) weights += bytes_of(p);
        const double base = double(backend.memory_stats().bytes_in_use);
        backend.reset_peak_memory();
        Tensor loss;
        {
          AutocastGuard autocast(bf16);
          loss = lm_loss(model->forward(ids), ids, -1);
        }
        backend.synchronize();
        const double saved = double(backend.memory_stats().bytes_in_use) - base;
        loss.backward();
        for (const Tensor& p : model->parameters())
          if (p.grad().defined()) grads += bytes_of(p.grad());
        clip_grad_norm(model->parameters(), 1.0);
        opt.step();
        opt.zero_grad();
        loss = Tensor();
        backend.synchronize();
        const double peak = double(backend.memory_stats().peak_bytes_in_use);
        const double optimizer = base - weights - bytes_of(ids);
        std::printf("#   %s memory (MiB): weights %.0f | optimizer state %.0f | saved by forward %.0f | gradients %.0f | "
                    "workspace %.0f | allocator peak %.0f | process peak RSS %.0f\n",
                    name.c_str(), weights / mib, optimizer / mib, saved / mib, grads / mib,
                    std::round((peak - base - saved - grads) / mib) + 0.0, peak / mib, bench::peak_rss_bytes() / mib);
      }
      std::fflush(stdout);
      if (o.phases) {
        // Separate reps, so the extra synchronisation does not touch the figures above.
        std::vector<double> ph[4];
        for (int r = 0; r < o.reps; ++r) {
          double m[4];
          const double s = synced_now();
          step(m);
          for (int i = 0; i < 4; ++i) ph[i].push_back(m[i] - (i ? m[i - 1] : s));
        }
        std::printf("#   %s phases (ms, median, device drained after each): fwd+loss %.3f  bwd %.3f  clip %.3f  "
                    "adamw %.3f\n",
                    name.c_str(), 1e3 * median(ph[0]), 1e3 * median(ph[1]), 1e3 * median(ph[2]), 1e3 * median(ph[3]));
        std::fflush(stdout);
      }
    }
  }
  return 0;
}

}  // namespace

int bench_train(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* a = argv[i];
    const char* v = nullptr;
    if (!std::strcmp(a, "--phases")) {
      o.phases = true;
      continue;
    }
    if (!std::strcmp(a, "--memory")) {
      o.memory = true;
      continue;
    }
    const bool known = !std::strcmp(a, "--threads") || !std::strcmp(a, "--reps") || !std::strcmp(a, "--only") ||
                       !std::strcmp(a, "--device") || !std::strcmp(a, "--precision") || !std::strcmp(a, "--batch") ||
                       !std::strcmp(a, "--d") || !std::strcmp(a, "--warmup") || !std::strcmp(a, "--peak-tflops") ||
                       !std::strcmp(a, "--n-ctx") || !std::strcmp(a, "--layers") || !std::strcmp(a, "--vocab") ||
                       !std::strcmp(a, "--heads");
    if (!known || !(v = value())) {
      std::fprintf(stderr, "bench train: %s '%s'\n", known ? "missing value for" : "unknown argument", a);
      return 2;
    }
    if (!std::strcmp(a, "--threads")) o.threads = std::atoi(v);
    else if (!std::strcmp(a, "--reps")) o.reps = std::atoi(v);
    else if (!std::strcmp(a, "--only")) o.only = v;
    else if (!std::strcmp(a, "--device")) o.device = v;
    else if (!std::strcmp(a, "--precision")) o.precision = v;
    else if (!std::strcmp(a, "--batch")) o.batch = std::atoll(v);
    else if (!std::strcmp(a, "--d")) o.widths = v;
    else if (!std::strcmp(a, "--warmup")) o.warmup = std::atoi(v);
    else if (!std::strcmp(a, "--n-ctx")) o.n_ctx = std::atoll(v);
    else if (!std::strcmp(a, "--layers")) o.layers = std::atoll(v);
    else if (!std::strcmp(a, "--vocab")) o.vocab = std::atoll(v);
    else if (!std::strcmp(a, "--heads")) o.heads = std::atoll(v);
    else o.peak_tflops = std::atof(v);
  }
  try {
    return run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench train: %s\n", e.what());
    return 1;
  }
}
