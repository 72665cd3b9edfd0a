// bf16 autocast (core/autocast.h, ops/autocast_policy.h) on the CPU backend: the guard's state,
// which ops lower to bf16 and which widen to f32, that f32 master weights get f32 gradients, the
// bf16 GEMM and bf16 gradient accumulation kernels, and tiny models whose bf16 loss and gradients
// stay close to f32. The CUDA suite checks the same ops against these CPU results.
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "core/autocast.h"
#include "core/backend.h"
#include "core/determinism.h"
#include "cpu/gemm.h"
#include "cpu/gemm_kernels.h"
#include "experiments/run_config.h"
#include "experiments/lm_run.h"
#include "nn/lm.h"
#include "nn/optim.h"
#include "ops/common.h"
#include "report/csv.h"
#include "tests/lm_train_step.h"
#include "tests/model_configs.h"
#include "tests/temp_dir.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {

// bf16 keeps 8 significant bits: unit roundoff 2^-9.
constexpr double kBf16Eps = 1.0 / 512;


double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

// max |got - want| relative to max |want|.
double rel_err(const Tensor& got, const Tensor& want) {
  const std::vector<double> g = vals(got), w = vals(want);
  REQUIRE(g.size() == w.size());
  double d = 0;
  for (size_t i = 0; i < g.size(); ++i) d = std::max(d, std::abs(g[i] - w[i]));
  return d / std::max(max_abs(w), 1e-30);
}

Tensor leaf(const Shape& s, uint64_t seed, double scale = 1.0) {
  Tensor t = mul(randn(s, seed), scale).detach();
  t.set_requires_grad(true);
  return t;
}

// x rounded to bf16 and back (no autograd).
Tensor round_bf16(const Tensor& x) { return x.detach().to(DType::bf16).to(DType::f32); }

}  // namespace

TEST_CASE("AutocastGuard: off by default, nests, restores, bf16 only") {
  CHECK_FALSE(autocast_enabled());
  {
    AutocastGuard on;
    CHECK(autocast_enabled());
    CHECK(autocast_state().dtype == DType::bf16);
    {
      AutocastGuard off(false);
      CHECK_FALSE(autocast_enabled());
    }
    CHECK(autocast_enabled());
  }
  CHECK_FALSE(autocast_enabled());
  CHECK_THROWS_WITH_AS(AutocastGuard(true, DType::f64), doctest::Contains("only bf16"), Error);
  CHECK_FALSE(autocast_enabled());
}

TEST_CASE("bf16 GEMM kernel: f32 accumulation of exact bf16 products, every layout and batch stride") {
  // C = A B from the backend directly, for transposes and a stride-0 (broadcast) operand, on both
  // CPU paths: the native AVX512_BF16 kernel (where the CPU has it: within the f32 accumulation
  // bound of the exact result, as cpu/gemm.h states) and the widening fallback (exactly the f32
  // GEMM of the widened operands: the same products, summed in the same order).
  for (bool native : {true, false})
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        if (native && !cpu::bf16gemm_native()) {
          MESSAGE("native bf16 GEMM skipped: this CPU has no AVX512_BF16");
          continue;
        }
        cpu::detail::gemm_set_native_bf16(native);
        const int64_t M = 7, N = 9, K = 13, batch = 3;
        Tensor a = randn({batch, ta ? K : M, ta ? M : K}, 1).to(DType::bf16);
        Tensor b = randn({tb ? N : K, tb ? K : N}, 2).to(DType::bf16);  // shared by the batch
        Tensor c = zeros({batch, M, N}), want = zeros({batch, M, N});
        Tensor af = a.to(DType::f32), bfl = b.to(DType::f32);
        Backend& be = backend_for(kCPU);
        GemmArgs args{.dtype = DType::bf16, .trans_a = ta, .trans_b = tb, .M = M, .N = N, .K = K, .alpha = 1.5,
                      .A = a.raw_data(), .lda = ta ? M : K, .stride_a = M * K, .B = b.raw_data(), .ldb = tb ? K : N,
                      .C = c.raw_data(), .ldc = N, .stride_c = M * N, .batch = batch};
        be.gemm(args);
        args.dtype = DType::f32, args.A = af.raw_data(), args.B = bfl.raw_data(), args.C = want.raw_data();
        be.gemm(args);
        cpu::detail::gemm_set_native_bf16(true);
        INFO("native " << native << " ta " << ta << " tb " << tb);
        if (!native) {
          CHECK(c.to_vector<float>() == want.to_vector<float>());
          continue;
        }
        // |c - exact| <= gamma_{2K+3}(2^-24) * 1.5 * sum_k |a_ik b_kj| (tests/test_gemm.cpp), exact in f64.
        const std::vector<float> cv = c.to_vector<float>(), av = af.to_vector<float>(), bv = bfl.to_vector<float>();
        const double u = std::ldexp(1.0, -24), g = (2 * K + 3) * u / (1 - (2 * K + 3) * u);
        int64_t bad = 0;
        for (int64_t n = 0; n < batch; ++n)
          for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) {
              double exact = 0, mag = 0;
              for (int64_t k = 0; k < K; ++k) {
                const double x = av[n * M * K + (ta ? k * M + i : i * K + k)], y = bv[tb ? j * K + k : k * N + j];
                exact += x * y;
                mag += std::fabs(x * y);
              }
              bad += !(std::fabs(cv[(n * M + i) * N + j] - 1.5 * exact) <= g * 1.5 * mag + 1e-300);
            }
        CHECK(bad == 0);
      }
}

TEST_CASE("bf16 elementwise add (the engine's gradient accumulation): f32 sum rounded once") {
  Tensor a = randn({5, 33}, 3).to(DType::bf16), b = randn({5, 33}, 4).to(DType::bf16);
  Tensor out = Tensor::empty({5, 33}, TensorOptions{DType::bf16});
  backend_for(kCPU).binary(BinaryOp::add, a, b, out);
  const std::vector<bf16> got = out.to_vector<bf16>();
  const std::vector<bf16> av = a.to_vector<bf16>(), bv = b.to_vector<bf16>();
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i].bits == bf16(float(av[i]) + float(bv[i])).bits);
}

// The residual stream is f32 and a branch's output bf16: add reads the bf16 operand as it is.
TEST_CASE("autocast residual add (f32 + bf16): bitwise the add of a widened copy, values and gradients") {
  struct Case {
    Shape sa, sb;
    bool b_first, strided;
  };
  for (const Case& c : {Case{{3, 5, 8}, {3, 5, 8}, false, false}, Case{{3, 5, 8}, {3, 5, 8}, true, false},
                        Case{{3, 5, 8}, {8}, false, false}, Case{{8}, {3, 5, 8}, true, false},
                        Case{{3, 5, 8}, {3, 8, 5}, false, true}}) {
    CAPTURE(c.b_first);
    CAPTURE(c.strided);
    Tensor x = leaf(c.sa, 1), hsrc = leaf(c.sb, 2);
    Tensor rb = randn(c.sa.size() >= c.sb.size() ? c.sa : c.sb, 3);
    auto run = [&](bool mixed) {
      x.zero_grad();
      hsrc.zero_grad();
      Tensor loss;
      {
        AutocastGuard ac;
        Tensor h = hsrc.to(DType::bf16);  // a bf16 branch output
        if (c.strided) h = h.transpose(1, 2);
        if (!mixed) h = h.to(DType::f32);  // the reference: widen first
        Tensor y = c.b_first ? add(h, x) : add(x, h);
        CHECK(y.dtype() == DType::f32);
        loss = sum(mul(y, rb));
        if (mixed) {
          CHECK(vals(y) == vals(add(x, h.to(DType::f32))));
          // No widening cast between the bf16 operand and the add: its edge leads to h's node.
          const auto& next = y.grad_fn()->next;
          REQUIRE(next.size() == 2);
          CHECK(next[c.b_first ? 0 : 1].get() == h.grad_fn().get());
        }
      }
      loss.backward();
      return std::make_pair(vals(x.grad()), vals(hsrc.grad()));
    };
    const auto [gx_mixed, gh_mixed] = run(true);
    const auto [gx_ref, gh_ref] = run(false);
    CHECK(gx_mixed == gx_ref);
    CHECK(gh_mixed == gh_ref);
  }
  // Outside a guard the dtypes must agree.
  CHECK_THROWS_AS(add(randn({3}, 1), randn({3}, 2).to(DType::bf16)), Error);
}

TEST_CASE("autocast matmul: bf16 result of the bf16-rounded operands, f32 gradients for f32 leaves") {
  Tensor a = leaf({6, 40}, 1), b = leaf({40, 9}, 2);
  Tensor y;
  {
    AutocastGuard ac;
    y = matmul(a, b);
  }
  CHECK(y.dtype() == DType::bf16);
  // Exactly the bf16 GEMM (f32 accumulation, one rounding to bf16) of the bf16-rounded operands.
  Tensor want = matmul(a.detach().to(DType::bf16), b.detach().to(DType::bf16));
  REQUIRE(want.dtype() == DType::bf16);
  CHECK(y.to_vector<bf16>().size() == want.to_vector<bf16>().size());
  const std::vector<bf16> yv = y.to_vector<bf16>(), wv = want.to_vector<bf16>();
  for (size_t i = 0; i < yv.size(); ++i) CHECK(yv[i].bits == wv[i].bits);

  // Gradients come back through the casts: f32, and equal to the bf16 backward widened.
  Tensor g = randn({6, 9}, 3).to(DType::bf16);
  y.backward(g);
  REQUIRE(a.grad().defined());
  CHECK(a.grad().dtype() == DType::f32);
  CHECK(b.grad().dtype() == DType::f32);
  Tensor ga = matmul(g, round_bf16(b).to(DType::bf16).t()).to(DType::f32);
  CHECK(a.grad().to_vector<float>() == ga.to_vector<float>());
  // ... which is within bf16 rounding of the f32 gradient.
  Tensor gf = g.to(DType::f32);
  CHECK(rel_err(a.grad(), matmul(gf, b.detach().t())) < 4 * kBf16Eps);
  CHECK(rel_err(b.grad(), matmul(a.detach().t(), gf)) < 4 * kBf16Eps);

  // f64 is never cast; outside a guard mixed dtypes are an error.
  {
    AutocastGuard ac;
    CHECK(matmul(randn({2, 3}, 1, TensorOptions{DType::f64}), randn({3, 2}, 2, TensorOptions{DType::f64})).dtype() ==
          DType::f64);
  }
  CHECK_THROWS_WITH_AS(matmul(randn({2, 3}, 1).to(DType::bf16), randn({3, 2}, 2)), doctest::Contains("dtype mismatch"),
                       Error);
  CHECK(matmul(randn({2, 3}, 1).to(DType::bf16), randn({3, 2}, 2).to(DType::bf16)).dtype() == DType::bf16);
}

TEST_CASE("autocast matmul with broadcast batch dims: the weight's gradient sums the batch in f32") {
  Tensor x = leaf({2, 3, 4, 5}, 4), w = leaf({5, 6}, 5);
  Tensor y;
  {
    AutocastGuard ac;
    y = matmul(x, w);
    CHECK(y.dtype() == DType::bf16);
  }
  Tensor g = randn({2, 3, 4, 6}, 6).to(DType::bf16);
  y.backward(g);
  REQUIRE(w.grad().defined());
  CHECK(w.grad().dtype() == DType::f32);
  CHECK(w.grad().shape() == Shape{5, 6});
  Tensor want = sum(matmul(x.detach().transpose(-1, -2), g.to(DType::f32)), {0, 1});
  CHECK(rel_err(w.grad(), want) < 4 * kBf16Eps);
}

TEST_CASE("autocast masked token mixing (flat and multi-head): bf16 out, f32 gradients close to f32") {
  // T = 150: many row tiles of the triangle-hinted GEMMs, each over its own K range.
  for (int64_t T : {5, 150}) {
    const int64_t B = 2, D = 12, H = 3;
    Tensor x = leaf({B, T, D}, 1), w = leaf({T, T}, 2, 0.1), b = leaf({T}, 3);
    Tensor wh = leaf({H, T, T}, 4, 0.1), bh = leaf({H, T}, 5);
    for (bool heads : {false, true}) {
      INFO("T " << T << (heads ? " heads" : " flat"));
      auto run = [&](bool autocast) {
        for (Tensor t : {x, w, b, wh, bh}) t.zero_grad();
        Tensor y;
        {
          AutocastGuard ac(autocast);
          y = heads ? masked_token_mix_heads(x, wh, bh) : masked_token_mix(x, w, b);
        }
        CHECK(y.dtype() == (autocast ? DType::bf16 : DType::f32));
        Tensor g = randn(y.shape(), 9);
        y.backward(autocast ? g.to(DType::bf16) : g);
        Tensor gw = heads ? wh.grad() : w.grad(), gb = heads ? bh.grad() : b.grad();
        return std::vector<Tensor>{y.detach().to(DType::f32), x.grad(), gw, gb};
      };
      std::vector<Tensor> f = run(false), h = run(true);
      const char* what[] = {"output", "x grad", "weight grad", "bias grad"};
      for (size_t i = 0; i < f.size(); ++i) {
        INFO(what[i]);
        REQUIRE(h[i].defined());
        CHECK(h[i].dtype() == DType::f32);
        // Inputs and outputs each rounded once to bf16 (and the cotangent for the gradients):
        // a few units of 2^-9 relative to the tensor's scale.
        CHECK(rel_err(h[i], f[i]) < 6 * kBf16Eps);
      }
      // The masked (upper) part of the weight gradient stays exactly zero.
      const std::vector<float> gw = h[2].to_vector<float>();
      for (int64_t hh = 0; hh < (heads ? H : 1); ++hh)
        for (int64_t r = 0; r < T; ++r)
          for (int64_t c = r + 1; c < T; ++c) CHECK(gw[size_t((hh * T + r) * T + c)] == 0.0f);
    }
  }
}

TEST_CASE("autocast: activations, rope and attention run in bf16; ops without bf16 kernels widen bf16 inputs to f32 and pass gradients back in bf16") {
  Tensor a = leaf({4, 8}, 1), w = leaf({8, 8}, 2), bias = leaf({8}, 3);
  std::vector<int32_t> t = {1, 7, 0, 3};
  Tensor targets = from_vector(t);
  Tensor loss;
  {
    AutocastGuard ac;
    Tensor h = matmul(a, w);  // bf16
    REQUIRE(h.dtype() == DType::bf16);
    Tensor z = add(h, bias);  // bf16 + f32 -> f32
    CHECK(z.dtype() == DType::f32);
    // Pointwise activations keep their input's dtype, as torch.autocast's: bf16 kernels.
    CHECK(gelu(h).dtype() == DType::bf16);
    CHECK(silu(h).dtype() == DType::bf16);
    CHECK(swiglu(h, h).dtype() == DType::bf16);
    CHECK(bias_gelu(h, bias).dtype() == DType::bf16);  // the f32 parameter bias follows h
    CHECK(swiglu(h, z).dtype() == DType::f32);         // mixed dtypes meet in f32
    CHECK(layer_norm(h, Tensor(), Tensor()).dtype() == DType::f32);
    CHECK(rms_norm(h, Tensor()).dtype() == DType::f32);
    CHECK(softmax(h).dtype() == DType::f32);
    CHECK(mul(h, h).dtype() == DType::f32);
    Tensor q = h.view({1, 2, 4, 4});
    // Attention is on torch.autocast's lower-precision list: bf16 in and out (f32 inside), and
    // f32 inputs are lowered; rope keeps its input's dtype.
    CHECK(scaled_dot_product_attention(q, q, q, true).dtype() == DType::bf16);
    CHECK(scaled_dot_product_attention(z.view({1, 2, 4, 4}), q, q, true).dtype() == DType::bf16);
    CHECK(rope(q, 10000.0, 0).dtype() == DType::bf16);
    CHECK(rope(z.view({1, 2, 4, 4}), 10000.0, 0).dtype() == DType::f32);
    // The same bf16 tensor used twice: its two bf16 gradients are added by the engine.
    loss = add(cross_entropy(h, targets), cross_entropy(z, targets));
    CHECK(loss.dtype() == DType::f32);
  }
  loss.backward();
  CHECK(a.grad().dtype() == DType::f32);
  CHECK(w.grad().dtype() == DType::f32);
  CHECK(bias.grad().dtype() == DType::f32);
  // Outside a guard a bf16 input is still refused by an op that has no bf16 kernel.
  CHECK_THROWS_AS(layer_norm(randn({3}, 1).to(DType::bf16), Tensor(), Tensor()), Error);
}

namespace {

ModelConfig small(ModelKind kind, MixerForm form = MixerForm::flat) { return test::small_model(kind, form); }

Tensor batch_ids(const ModelConfig& c, uint64_t seed) { return randint(0, int32_t(c.vocab_size), {3, c.n_ctx}, seed); }

std::vector<double> flat_grads(const std::vector<Tensor>& params) {
  std::vector<double> g;
  for (const Tensor& p : params) {
    REQUIRE(p.grad().defined());
    CHECK(p.grad().dtype() == DType::f32);
    for (double v : vals(p.grad())) g.push_back(v);
  }
  return g;
}

}  // namespace

TEST_CASE("tiny models under bf16 autocast: loss and master-weight gradients close to f32") {
  struct V {
    const char* name;
    ModelConfig c;
  };
  const std::vector<V> variants = {{"mixer flat", small(ModelKind::masked_mixer)},
                                   {"mixer multihead", small(ModelKind::masked_mixer, MixerForm::multihead)},
                                   {"mixer expanded", small(ModelKind::masked_mixer, MixerForm::expanded)},
                                   {"llama", small(ModelKind::llama)},
                                   {"gpt", small(ModelKind::gpt)}};
  for (const V& v : variants) {
    INFO(v.name);
    Generator gen(7);
    auto model = make_model(v.c, gen);
    std::vector<Tensor> params = model->parameters();
    Tensor ids = batch_ids(v.c, 11);
    auto loss_and_grads = [&](bool autocast) {
      for (Tensor& p : params) p.zero_grad();
      Tensor loss;
      {
        AutocastGuard ac(autocast);
        loss = shifted_lm_loss(model->forward(ids), ids);
      }
      CHECK(loss.dtype() == DType::f32);
      loss.backward();
      return std::make_pair(loss.item(), flat_grads(params));
    };
    auto [l32, g32] = loss_and_grads(false);
    auto [l16, g16] = loss_and_grads(true);
    // Parameters stay f32.
    for (const Tensor& p : params) CHECK(p.dtype() == DType::f32);
    // Loss: a mean over 45 positions of cross-entropies of logits that carry a few bf16 roundings
    // each (relative 2^-9 per rounding, partly cancelling in the mean). The largest difference
    // seen across these models is 4.5e-4; the bound is 5x that, 0.06% of the loss (~4.2).
    MESSAGE(std::string(v.name), ": f32 loss ", l32, ", bf16 loss ", l16);
    CHECK(std::abs(l16 - l32) < 2.5e-3);
    // Gradients: relative L2 error of the whole gradient vector, and its direction. Every
    // backward GEMM rounds its inputs and output to bf16 (~2^-9 each); seen: at most 0.4%. The
    // bounds are 5x that; a broken cast or a missing gradient gives O(1).
    double dot = 0, n32 = 0, n16 = 0, diff = 0;
    for (size_t i = 0; i < g32.size(); ++i) {
      dot += g32[i] * g16[i], n32 += g32[i] * g32[i], n16 += g16[i] * g16[i];
      diff += (g32[i] - g16[i]) * (g32[i] - g16[i]);
    }
    const double rel = std::sqrt(diff / n32), cosine = dot / std::sqrt(n32 * n16);
    MESSAGE(std::string(v.name), ": gradient relative L2 error ", rel, ", cosine ", cosine);
    CHECK(rel < 0.02);
    CHECK(cosine > 0.9998);
  }
}

TEST_CASE("training under bf16 autocast: f32 AdamW state, the loss falls and tracks the f32 run") {
  const ModelConfig c = small(ModelKind::masked_mixer);
  auto train = [&](bool autocast) {
    Generator gen(3);
    auto model = make_model(c, gen);
    std::vector<Tensor> params = model->parameters();
    AdamW opt(params, AdamWOptions{3e-3, 0.9, 0.99, 1e-8, 0.0});
    std::vector<double> losses;
    for (int step = 0; step < 15; ++step) {
      losses.push_back(lm_train_step(*model, opt, batch_ids(c, uint64_t(100 + step % 3)), autocast));
    }
    for (const Tensor& p : params) CHECK(p.dtype() == DType::f32);
    return losses;
  };
  const std::vector<double> f = train(false), h = train(true);
  MESSAGE("f32 ", f.front(), " -> ", f.back(), "; bf16 ", h.front(), " -> ", h.back());
  CHECK(h.back() < h.front() - 0.5);
  // Seen: at most 1e-3 apart over the 15 steps.
  for (size_t i = 0; i < f.size(); ++i) CHECK(std::abs(h[i] - f[i]) < 0.01);
}

TEST_CASE("config: train.precision and train.deterministic") {
  RunConfig d = parse_run_config("name: x\n", "x.yaml");
  CHECK(d.train.precision == "f32");
  CHECK_FALSE(d.train.deterministic);
  RunConfig c = parse_run_config("train:\n  precision: bf16\n  deterministic: true\n", "x.yaml");
  CHECK(c.train.precision == "bf16");
  CHECK(c.train.deterministic);
  CHECK_THROWS_WITH_AS(parse_run_config("train:\n  precision: f16\n", "x.yaml"), doctest::Contains("precision"),
                       Error);
  CHECK_THROWS_WITH_AS(parse_run_config("train:\n  deterministic: maybe\n", "x.yaml"),
                       doctest::Contains("deterministic"), Error);
}

TEST_CASE("train_run with precision bf16 on the CPU: the loss falls; deterministic runs repeat exactly") {
  test::TempDir tmp("mg_autocast_train");
  test::write_story_corpus(tmp);
  auto config = [&](const std::string& out) {
    return "name: tiny\nout_dir: " + tmp.file(out) +
           "\nmodel:\n  kind: masked_mixer\n  d_model: 16\n  n_layers: 2\n  n_ctx: 24\n"
           "data:\n  format: dir\n  path: " + tmp.file("corpus") + "\n  vocab_size: 300\n  cache_dir: " +
           tmp.file("cache") + "\n  validation:\n    fraction: 0.1\n"
           "train:\n  batch_size: 4\n  steps: 10\n  lr: 0.01\n  warmup_steps: 2\n  eval_every: 5\n"
           "  eval_batches: 2\n  log_every: 2\n  checkpoint_every: 10\n  seed: 7\n  precision: bf16\n"
           "  deterministic: true\n";
  };
  const bool was = deterministic();
  auto losses = [&](const std::string& out) {
    TrainSummary s = train_run(parse_run_config(config(out), out + ".yaml"), {});
    CHECK(s.steps_done == 10);
    report::CsvTable t = report::read_csv(tmp.file(out) + "/metrics.csv");
    std::vector<std::string> v;
    for (auto& r : t.rows) v.push_back(r[2]);
    return v;
  };
  const std::vector<std::string> a = losses("a"), b = losses("b");
  CHECK(deterministic());
  set_deterministic(was);
  REQUIRE(a.size() == 10);
  CHECK(std::stod(a.back()) < std::stod(a.front()));
  CHECK(a == b);
}

TEST_CASE("bf16 bias gradients: the sum over leading dims is the f32 sum of the bf16 values, rounded once") {
  // grad_sum_to sums a bf16 gradient [rows, n] -> [n] as a ones-row bf16 GEMM (no widened copy);
  // other reductions (a broadcast middle dim) widen first. Both against the f64 sum of the same
  // bf16 values, within f32 summation error; the f32 result is then rounded once to bf16.
  for (const auto& c : std::vector<std::pair<Shape, Shape>>{{{8, 37, 300}, {300}}, {{5000, 7}, {7}},
                                                            {{2, 3, 4, 5}, {4, 5}}, {{6, 1, 9}, {1, 9}},
                                                            {{4, 6, 3}, {4, 1, 3}}, {{3, 8}, {}}}) {
    CAPTURE(shape_str(c.first));
    CAPTURE(shape_str(c.second));
    const Tensor g = randn(c.first, 31).to(DType::bf16);
    const std::vector<double> gv = vals(g);
    const Tensor got32 = detail::grad_sum_to(g, c.second, DType::f32), got16 = detail::grad_sum_to(g, c.second, DType::bf16);
    REQUIRE(got32.shape() == c.second);
    REQUIRE(got16.dtype() == DType::bf16);
    const Tensor want = detail::sum_to(g.to(DType::f64), c.second), absum = detail::sum_to(abs(g.to(DType::f64)), c.second);
    const std::vector<double> w = vals(want), a = vals(absum), s32 = vals(got32), s16 = vals(got16);
    for (size_t i = 0; i < w.size(); ++i) {
      CHECK(std::abs(s32[i] - w[i]) <= 1e-6 * a[i] + 1e-30);
      CHECK(s16[i] == double(float(bf16(float(s32[i])))));  // one rounding of the f32 sum
    }
  }
}
