// The kernel-k ("fully convolutional") token mixing of docs/paper.md A.4 (nn/masked_mixer.h
// masked_kernel_mix, MaskedKernelConv): against the formula written out as loops, k = 1 equal to
// the flat mix, f64 gradcheck on contiguous and non-contiguous inputs, causality bit for bit, the
// masked upper triangle's gradient exactly 0 on every tap, and the parameter count of the
// paper's kernel-4 mixer. Whole-model tests (reference forward, gradcheck of every parameter,
// causality) are in test_models.cpp; the PyTorch golden model in test_golden_models.cpp.
#include <cmath>
#include <map>

#include "nn/lm.h"
#include "nn/masked_mixer.h"
#include "ops/elementwise.h"
#include "ops/masked_mix.h"
#include "ops/reduce.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {

// y[b, i, f] = sum_{j <= i} sum_t W[i, j, t] x[b, j, f + t - p] + c[i], p = (k - 1) / 2, zeros
// outside [0, D).
std::vector<double> naive_kernel_mix(const Tensor& x, const Tensor& w, const Tensor& bias) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2), k = w.size(2), p = (k - 1) / 2;
  const std::vector<double> xv = vals(x.contiguous()), wv = vals(w.contiguous());
  const std::vector<double> bv = bias.defined() ? vals(bias) : std::vector<double>(size_t(T), 0.0);
  std::vector<double> y(size_t(B * T * D));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t f = 0; f < D; ++f) {
        double acc = bv[size_t(i)];
        for (int64_t j = 0; j <= i; ++j)
          for (int64_t t = 0; t < k; ++t) {
            const int64_t g = f + t - p;
            if (g >= 0 && g < D) acc += wv[size_t((i * T + j) * k + t)] * xv[size_t((b * T + j) * D + g)];
          }
        y[size_t((b * T + i) * D + f)] = acc;
      }
  return y;
}

Tensor leaf(const Tensor& t) {
  Tensor l = t.detach();
  l.set_requires_grad(true);
  return l;
}

}  // namespace

TEST_CASE("masked_kernel_mix matches the A.4 formula for k = 1..5, with and without bias, f32 and f64") {
  for (int64_t k : {1, 2, 3, 4, 5}) {
    for (DType dt : {DType::f32, DType::f64}) {
      CAPTURE(k);
      Tensor x = randn({2, 5, 7}, 1, TensorOptions{dt}), w = randn({5, 5, k}, 2, TensorOptions{dt});
      Tensor b = randn({5}, 3, TensorOptions{dt});
      const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
      check_vals(vals(masked_kernel_mix(x, w, b)), naive_kernel_mix(x, w, b), tol);
      check_vals(vals(masked_kernel_mix(x, w, Tensor())), naive_kernel_mix(x, w, Tensor()), tol);
    }
  }
  // Kernel wider than the feature axis: most taps read padding only.
  Tensor x = randn({1, 3, 2}, 4, TensorOptions{DType::f64}), w = randn({3, 3, 6}, 5, TensorOptions{DType::f64});
  check_vals(vals(masked_kernel_mix(x, w, Tensor())), naive_kernel_mix(x, w, Tensor()), 1e-12);
}

TEST_CASE("masked_kernel_mix with k = 1 is the flat masked_token_mix") {
  Tensor x = randn({2, 6, 4}, 1, TensorOptions{DType::f64}), w = randn({6, 6, 1}, 2, TensorOptions{DType::f64});
  Tensor b = randn({6}, 3, TensorOptions{DType::f64});
  CHECK(max_abs_diff(masked_kernel_mix(x, w, b), masked_token_mix(x, w.squeeze(2), b)) == 0.0);
}

TEST_CASE("masked_kernel_mix: f64 gradcheck in x, weight and bias, contiguous and non-contiguous") {
  for (int64_t k : {2, 3, 4}) {
    CAPTURE(k);
    auto f = [](const std::vector<Tensor>& in) { return masked_kernel_mix(in[0], in[1], in[2]); };
    check_grad(f, {leaf64({2, 4, 5}, 1), leaf64({4, 4, k}, 2), leaf64({4}, 3)});
    // x transposed in its last two dims, the weight a permuted view (taps outermost in memory),
    // the bias every other element of a longer vector.
    Tensor xt = leaf(randn({2, 5, 4}, 4, TensorOptions{DType::f64}).transpose(1, 2));
    Tensor wp = leaf(randn({k, 4, 4}, 5, TensorOptions{DType::f64}).permute({1, 2, 0}));
    Tensor bs = leaf(randn({8}, 6, TensorOptions{DType::f64}).slice(0, 0, 8, 2));
    REQUIRE_FALSE(xt.is_contiguous());
    REQUIRE_FALSE(wp.is_contiguous());
    REQUIRE_FALSE(bs.is_contiguous());
    check_grad(f, {xt, wp, bs});
    check_vals(vals(masked_kernel_mix(xt, wp, bs)), naive_kernel_mix(xt, wp, bs), 1e-12);
  }
}

TEST_CASE("masked_kernel_mix: the upper triangle of every tap is ignored and gets a zero gradient") {
  const int64_t T = 5, k = 4;
  Tensor x = randn({2, T, 6}, 1, TensorOptions{DType::f64});
  Tensor w = leaf(randn({T, T, k}, 2, TensorOptions{DType::f64})), b = leaf(randn({T}, 3, TensorOptions{DType::f64}));
  Tensor y = masked_kernel_mix(x, w, b);
  sum(mul(y, y)).backward();
  const std::vector<double> g = vals(w.grad());
  size_t upper_nonzero = 0, lower_nonzero = 0;
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j < T; ++j)
      for (int64_t t = 0; t < k; ++t) (j > i ? upper_nonzero : lower_nonzero) += g[size_t((i * T + j) * k + t)] != 0;
  CHECK(upper_nonzero == 0);
  CHECK(lower_nonzero == size_t(T * (T + 1) / 2 * k));
  // Rewriting the upper triangle changes nothing.
  Tensor w2 = w.detach().contiguous().clone();
  {
    std::vector<double> v = vals(w2);
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = i + 1; j < T; ++j)
        for (int64_t t = 0; t < k; ++t) v[size_t((i * T + j) * k + t)] = 1e3;
    w2 = from_vector(v, Shape{T, T, k}, TensorOptions{DType::f64});
  }
  CHECK(max_abs_diff(masked_kernel_mix(x, w2, b.detach()), y) == 0.0);
}

TEST_CASE("masked_kernel_mix is causal: changing token s never changes outputs at positions < s") {
  const int64_t T = 7, D = 5;
  Tensor w = randn({T, T, 4}, 2, TensorOptions{DType::f64}), b = randn({T}, 3, TensorOptions{DType::f64});
  Tensor x = randn({1, T, D}, 1, TensorOptions{DType::f64});
  Tensor ref = masked_kernel_mix(x, w, b);
  for (int64_t s = 0; s < T; ++s) {
    CAPTURE(s);
    std::vector<double> v = vals(x);
    for (int64_t f = 0; f < D; ++f) v[size_t(s * D + f)] += 1.0 + double(f);
    Tensor out = masked_kernel_mix(from_vector(v, Shape{1, T, D}, TensorOptions{DType::f64}), w, b);
    if (s > 0) CHECK(max_abs_diff(ref.narrow(1, 0, s), out.narrow(1, 0, s)) == 0.0);
    CHECK(max_abs_diff(ref.narrow(1, s, T - s), out.narrow(1, s, T - s)) > 1e-6);  // not vacuous
  }
}

TEST_CASE("kernel mixer: shapes, Conv1d init bound, shorter sequences, parameter count of the paper's runs") {
  ModelConfig c;
  c.kind = ModelKind::masked_mixer;
  c.mixer_form = MixerForm::kernel;
  c.vocab_size = 11;
  c.d_model = 8;
  c.n_layers = 2;
  c.n_ctx = 6;
  c.mixer_kernel = 3;
  Generator gen(1);
  auto m = make_model(c, gen, TensorOptions{DType::f64});
  std::map<std::string, Tensor> sd;
  for (auto& [name, t] : m->state_dict()) sd[name] = t;
  REQUIRE(sd.count("mixerblocks.0.conv.weight"));
  CHECK(sd.at("mixerblocks.0.conv.weight").shape() == Shape{6, 6, 3});
  CHECK(sd.at("mixerblocks.1.conv.bias").shape() == Shape{6});
  const double bound = 1.0 / std::sqrt(6.0 * 3.0);  // Conv1d: fan_in = in_channels * k
  double worst = 0;
  for (double v : vals(sd.at("mixerblocks.0.conv.weight"))) worst = std::max(worst, std::abs(v));
  CHECK(worst <= bound);
  CHECK(worst > 0.8 * bound);
  CHECK(m->num_parameters() == c.expected_num_parameters());
  // A sequence of T < n tokens is the full model at its first T positions.
  Tensor ids = from_vector(std::vector<int32_t>{3, 7, 1, 10, 4, 2}, Shape{1, 6});
  Tensor full = m->forward(ids), part = m->forward(ids.narrow(1, 0, 4));
  CHECK(max_abs_diff(full.narrow(1, 0, 4), part) < 1e-13);
  // The paper's kernel-4 TinyStories mixer (d 1024, L 8, n 512, V 4096): the flat model's
  // 77,672,448 (docs/paper.md A.11) plus 3 more [n, n] taps per block.
  ModelConfig paper;
  paper.kind = ModelKind::masked_mixer;
  paper.mixer_form = MixerForm::kernel;
  paper.mixer_kernel = 4;
  paper.d_model = 1024;
  paper.n_layers = 8;
  paper.n_ctx = 512;
  paper.vocab_size = 4096;
  CHECK(paper.expected_num_parameters() == 77672448 + 8 * 3 * 512 * 512);
  c.mixer_kernel = 0;
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("ModelConfig.mixer_kernel = 0 must be positive"), Error);
}
