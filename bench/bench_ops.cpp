// mixgrad-bench ops: forward+backward time of the paper's fused ops at masked-mixer sizes
// (B=8, T=512, D=256/512, vocab 4096). bench/torch_ops.py times the same work in PyTorch;
// bench/compare_ops.sh runs both in one go and prints the ratios.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/masked_mix.h"
#include "ops/norm.h"
#include "ops/ops.h"
#include "ops/softmax.h"

using namespace mg;

namespace {

double median_ms(const std::function<void()>& fn, int reps) {
  fn();  // warm-up: first-touch allocations, caches
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto a = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

Tensor param(const Shape& s, uint64_t seed, double scale = 1.0) {
  Tensor p = mul(randn(s, seed), scale).detach();
  p.set_requires_grad(true);
  return p;
}

void clear(std::initializer_list<Tensor*> ts) {
  for (Tensor* t : ts) t->zero_grad();
}

}  // namespace

int bench_ops(int argc, char** argv) {
  int threads = 2, reps = 7;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--threads") && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--reps") && i + 1 < argc) reps = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else {
      std::fprintf(stderr, "bench ops: unknown argument '%s'\n", argv[i]);
      return 2;
    }
  }
  omp_set_num_threads(threads);
  const int64_t B = 8, T = 512, V = 4096;
  std::printf("# mixgrad ops fwd+bwd, %d threads, median of %d (ms)\n", threads, reps);
  // Times forward() (one op) plus its backward from g (the default for a scalar output when g
  // is undefined), the gradients of `leaves` cleared first; prints the median.
  auto time_op = [&](const std::string& name, std::initializer_list<Tensor*> leaves, const Tensor& g,
                     const std::function<Tensor()>& forward) {
    const double ms = median_ms([&] {
      clear(leaves);
      Tensor y = forward();
      if (g.defined()) y.backward(g);
      else y.backward();
    }, reps);
    std::printf("%-28s %10.3f\n", name.c_str(), ms);
  };
  auto want = [&](const std::string& name) { return only.empty() || name.find(only) != std::string::npos; };

  for (int64_t D : {256, 512}) {
    std::string d = std::to_string(D);
    if (want("layernorm_d" + d)) {
      Tensor x = param({B, T, D}, 1), w = param({D}, 2), b = param({D}, 3);
      time_op("layernorm_d" + d, {&x, &w, &b}, randn({B, T, D}, 4), [&] { return layer_norm(x, w, b); });
    }
    if (want("gelu_d" + d)) {
      Tensor x = param({B, T, 4 * D}, 5);
      time_op("gelu_d" + d, {&x}, randn({B, T, 4 * D}, 6), [&] { return gelu(x); });
    }
    if (want("masked_mix_d" + d)) {
      Tensor x = param({B, T, D}, 7), w = param({T, T}, 8, 1.0 / 22.6), c = param({T}, 9);
      time_op("masked_mix_d" + d, {&x, &w, &c}, randn({B, T, D}, 10), [&] { return masked_token_mix(x, w, c); });
    }
    if (want("attention_d" + d)) {
      const int64_t H = 8, Dh = D / H;
      Tensor q = param({B, H, T, Dh}, 11), k = param({B, H, T, Dh}, 12), v = param({B, H, T, Dh}, 13);
      time_op("attention_d" + d, {&q, &k, &v}, randn({B, H, T, Dh}, 14),
              [&] { return scaled_dot_product_attention(q, k, v, true); });
    }
  }
  // Under bf16 autocast, the Llama benchmark's shape (4 heads of 128): bf16 q, k, v and gradient.
  if (want("attention_bf16_d512_h4")) {
    const int64_t H = 4, Dh = 128;
    auto bf16_leaf = [&](uint64_t seed) {
      Tensor t = randn({B, H, T, Dh}, seed).to(DType::bf16);
      t.set_requires_grad(true);
      return t;
    };
    Tensor q = bf16_leaf(17), k = bf16_leaf(18), v = bf16_leaf(19);
    time_op("attention_bf16_d512_h4", {&q, &k, &v}, randn({B, H, T, Dh}, 20).to(DType::bf16),
            [&] { return scaled_dot_product_attention(q, k, v, true); });
  }
  if (want("softmax_ce_v4096")) {
    Tensor logits = param({B * T, V}, 15);
    Tensor targets = randint(0, int32_t(V), {B * T}, 16);
    time_op("softmax_ce_v4096", {&logits}, Tensor(), [&] { return cross_entropy(logits, targets); });
  }
  return 0;
}
