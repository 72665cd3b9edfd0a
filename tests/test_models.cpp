// nn/ language models: the masked mixer (flat, expanded, multihead), Llama and GPT-1. End-to-end
// gradchecks of the loss w.r.t. every parameter, causality, parameter counts against docs/paper.md
// A.11 / B.4, state-dict names, checkpoint loading errors, the shifted loss and a short training run.
#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "core/backend.h"
#include "nn/gpt.h"
#include "nn/llama.h"
#include "nn/lm.h"
#include "nn/masked_mixer.h"
#include "nn/optim.h"
#include "ops/softmax.h"
#include "tests/lm_train_step.h"
#include "tests/model_configs.h"
#include "tests/reference.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {

const TensorOptions kF64{DType::f64};
constexpr int32_t kPad = 0;

// The tiny sizes of every test here.
ModelConfig tiny(ModelKind kind, MixerForm form = MixerForm::flat) { return tiny_model(kind, form); }

using Variant = ModelVariant;

std::vector<Variant> all_variants() {
  return {{"mixer flat", tiny(ModelKind::masked_mixer, MixerForm::flat)},
          {"mixer expanded", tiny(ModelKind::masked_mixer, MixerForm::expanded)},
          {"mixer multihead", tiny(ModelKind::masked_mixer, MixerForm::multihead)},
          {"mixer kernel", tiny(ModelKind::masked_mixer, MixerForm::kernel)},
          {"llama", tiny(ModelKind::llama)},
          {"gpt", tiny(ModelKind::gpt)}};
}

// The model of config c in f64, its weights drawn from Generator(seed).
std::unique_ptr<LanguageModel> f64_model(const ModelConfig& c, uint64_t seed) {
  Generator gen(seed);
  return make_model(c, gen, kF64);
}

// Two sequences with pads (id 0) at the end of the second, so the gradcheck also covers ignored targets.
Tensor sample_ids() { return ids_tensor({3, 7, 1, 10, 4, 2, 5, 9, 8, 6, 0, 0}, 2, 6); }

}  // namespace

// ---- a plain reference of each model's forward, for one sequence, in f64 loops ----------------

namespace {

using Vec = std::vector<double>;
struct Mat {  // row-major [r, c]
  int64_t r = 0, c = 0;
  Vec v;
  double& at(int64_t i, int64_t j) { return v[size_t(i * c + j)]; }
  double at(int64_t i, int64_t j) const { return v[size_t(i * c + j)]; }
};
Mat zeros_mat(int64_t r, int64_t c) { return Mat{r, c, Vec(size_t(r * c), 0.0)}; }

struct Weights {
  std::map<std::string, Tensor> sd;
  Mat mat(const std::string& name, int64_t rows) const {  // any tensor as [rows, numel/rows]
    Vec v = vals(sd.at(name));
    return Mat{rows, int64_t(v.size()) / rows, v};
  }
  Vec vec(const std::string& name) const { return vals(sd.at(name)); }
};

// The ops are the plain loops of tests/reference.h; these adapt them to whole matrices and to
// the column blocks of one head.

// The columns [c0, c0 + width) of x as a contiguous [x.r, width] matrix, and back.
Mat columns(const Mat& x, int64_t c0, int64_t width) {
  Mat y = zeros_mat(x.r, width);
  for (int64_t i = 0; i < x.r; ++i)
    for (int64_t j = 0; j < width; ++j) y.at(i, j) = x.at(i, c0 + j);
  return y;
}
void set_columns(Mat& y, int64_t c0, const Mat& block) {
  for (int64_t i = 0; i < block.r; ++i)
    for (int64_t j = 0; j < block.c; ++j) y.at(i, c0 + j) = block.at(i, j);
}
Mat transposed(const Mat& w) {
  Mat t = zeros_mat(w.c, w.r);
  for (int64_t i = 0; i < w.r; ++i)
    for (int64_t j = 0; j < w.c; ++j) t.at(j, i) = w.at(i, j);
  return t;
}

// y = x W^T + b (W [out, in], PyTorch Linear); transposed_w: y = x W + b (W [in, out], HF Conv1D).
Mat ref_linear(const Mat& x, const Mat& w, const Vec* b, bool transposed_w = false) {
  const Mat wt = transposed_w ? transposed(w) : w;  // [out, in]
  REQUIRE(x.c == wt.c);
  Mat y = zeros_mat(x.r, wt.r);
  ref::matmul_forward(y.v.data(), x.v.data(), wt.v.data(), b ? b->data() : nullptr, x.r, x.c, wt.r);
  return y;
}
Mat ref_layernorm(const Mat& x, const Vec& g, const Vec& b, double eps) {
  Mat y = x;
  ref::layer_norm_forward(y.v.data(), x.v.data(), g.data(), b.data(), x.r, x.c, eps);
  return y;
}
Mat ref_rmsnorm(const Mat& x, const Vec& g, double eps) {
  Mat y = x;
  ref::rms_norm_forward(y.v.data(), x.v.data(), g.data(), x.r, x.c, eps);
  return y;
}
double gelu_erf(double v) { return ref::gelu(v); }
double gelu_tanh(double v) { return ref::gelu_tanh(v); }
Mat apply(Mat x, double (*f)(double)) {
  for (double& v : x.v) v = f(v);
  return x;
}
Mat plus(Mat a, const Mat& b) {
  for (size_t i = 0; i < a.v.size(); ++i) a.v[i] += b.v[i];
  return a;
}
// y[i, :] = sum_{j <= i} W[i, j] x[j, :] + c[i] over the columns [c0, c0 + w) of x: the leading
// [y.r, x.r] block of W (a sequence shorter than the model's n uses the first x.r positions).
void ref_masked_mix(const Mat& x, const Mat& W, const Vec& c, int64_t c0, int64_t width, Mat& y) {
  const Mat xs = columns(x, c0, width);
  Mat w = zeros_mat(y.r, x.r), out = zeros_mat(y.r, width);
  for (int64_t i = 0; i < y.r; ++i)
    for (int64_t j = 0; j < x.r; ++j) w.at(i, j) = W.at(i, j);
  ref::masked_mix_forward(out.v.data(), xs.v.data(), w.v.data(), c.data(), 1, x.r, width, y.r);
  set_columns(y, c0, out);
}
// Causal softmax attention of one head over the columns [c0, c0 + Dh) of q, k, v.
void ref_attention(const Mat& q, const Mat& k, const Mat& v, int64_t c0, int64_t Dh, Mat& out) {
  const Mat qh = columns(q, c0, Dh), kh = columns(k, c0, Dh), vh = columns(v, c0, Dh);
  Mat oh = zeros_mat(q.r, Dh);
  ref::attention_forward(oh.v.data(), qh.v.data(), kh.v.data(), vh.v.data(), 1, q.r, Dh, true, 0);
  set_columns(out, c0, oh);
}
// HF rotate-half RoPE on every head of x [T, H*Dh], positions 0..T-1.
Mat ref_rope(const Mat& x, int64_t heads, double theta) {
  Mat y = x;
  const int64_t Dh = x.c / heads;
  for (int64_t h = 0; h < heads; ++h) {
    const Mat xh = columns(x, h * Dh, Dh);
    Mat yh = xh;
    ref::rope_forward(yh.v.data(), xh.v.data(), 1, x.r, Dh, theta, 0);
    set_columns(y, h * Dh, yh);
  }
  return y;
}

// Logits [T, V] of one sequence.
Mat reference_logits(const ModelConfig& c, const Weights& w, const std::vector<int32_t>& ids) {
  const int64_t T = int64_t(ids.size()), d = c.d_model, V = c.vocab_size;
  const double eps = c.resolved_norm_eps();
  auto gather = [&](const std::string& name) {
    Mat table = w.mat(name, V), x = zeros_mat(T, d);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < d; ++j) x.at(t, j) = table.at(ids[size_t(t)], j);
    return x;
  };
  if (c.kind == ModelKind::masked_mixer) {
    Mat x = gather("wte.weight");
    for (int64_t l = 0; l < c.n_layers; ++l) {
      std::string p = "mixerblocks." + std::to_string(l) + ".";
      Mat h = ref_layernorm(x, w.vec(p + "seq_layernorm.weight"), w.vec(p + "seq_layernorm.bias"), eps);
      Mat y = zeros_mat(T, d);
      if (c.mixer_form == MixerForm::flat) {
        ref_masked_mix(h, w.mat(p + "conv.weight", c.n_ctx), w.vec(p + "conv.bias"), 0, d, y);
      } else if (c.mixer_form == MixerForm::expanded) {
        // The full [e*n, n] first matrix, every hidden unit computed.
        const int64_t e = c.mixer_expansion * c.n_ctx;
        Mat hidden = zeros_mat(e, d);
        ref_masked_mix(h, w.mat(p + "conv.0.weight", e), w.vec(p + "conv.0.bias"), 0, d, hidden);
        hidden = apply(hidden, gelu_erf);
        Mat full_y = zeros_mat(c.n_ctx, d);
        ref_masked_mix(hidden, w.mat(p + "conv.2.weight", c.n_ctx), w.vec(p + "conv.2.bias"), 0, d, full_y);
        for (int64_t t = 0; t < T; ++t)
          for (int64_t j = 0; j < d; ++j) y.at(t, j) = full_y.at(t, j);
      } else if (c.mixer_form == MixerForm::kernel) {
        // docs/paper.md A.4 written out: y[i, f] = sum_{j <= i} sum_t W[i, j, t] h[j, f + t - p] + c[i].
        const int64_t k = c.mixer_kernel, pad = (k - 1) / 2;
        Mat W = w.mat(p + "conv.weight", c.n_ctx);  // [n, n * k]: (i, j * k + t)
        Vec cb = w.vec(p + "conv.bias");
        for (int64_t i = 0; i < T; ++i)
          for (int64_t f = 0; f < d; ++f) {
            double acc = cb[size_t(i)];
            for (int64_t j = 0; j <= i; ++j)
              for (int64_t t = 0; t < k; ++t)
                if (f + t - pad >= 0 && f + t - pad < d) acc += W.at(i, j * k + t) * h.at(j, f + t - pad);
            y.at(i, f) = acc;
          }
      } else {
        Vec pb = w.vec(p + "conv.proj_head.bias"), ob = w.vec(p + "conv.out_proj.bias");
        Mat proj = ref_linear(h, w.mat(p + "conv.proj_head.weight", d), &pb);
        const int64_t H = c.mixer_heads, Dh = d / H, n = c.n_ctx;
        Mat W = w.mat(p + "conv.convs.weight", H * n);
        Vec B = w.vec(p + "conv.convs.bias");
        Mat z = zeros_mat(T, d);
        for (int64_t hh = 0; hh < H; ++hh) {
          Mat Wh{n, n, Vec(W.v.begin() + hh * n * n, W.v.begin() + (hh + 1) * n * n)};
          Vec bh(B.begin() + hh * n, B.begin() + (hh + 1) * n);
          ref_masked_mix(proj, Wh, bh, hh * Dh, Dh, z);
        }
        y = ref_linear(z, w.mat(p + "conv.out_proj.weight", d), &ob);
      }
      x = plus(x, y);
      Mat g = ref_layernorm(x, w.vec(p + "patch_layernorm.weight"), w.vec(p + "patch_layernorm.bias"), eps);
      Vec b0 = w.vec(p + "patch_ff.0.bias"), b2 = w.vec(p + "patch_ff.2.bias");
      Mat f = apply(ref_linear(g, w.mat(p + "patch_ff.0.weight", c.ffn_mult * d), &b0), gelu_erf);
      x = plus(x, ref_linear(f, w.mat(p + "patch_ff.2.weight", d), &b2));
    }
    return ref_linear(x, w.mat("lm_head.weight", V), nullptr);
  }
  const int64_t H = c.n_heads, Dh = d / H;
  if (c.kind == ModelKind::llama) {
    Mat x = gather("model.embed_tokens.weight");
    for (int64_t l = 0; l < c.n_layers; ++l) {
      std::string p = "model.layers." + std::to_string(l) + ".";
      Mat h = ref_rmsnorm(x, w.vec(p + "input_layernorm.weight"), eps);
      Mat q = ref_rope(ref_linear(h, w.mat(p + "self_attn.q_proj.weight", d), nullptr), H, c.rope_theta);
      Mat k = ref_rope(ref_linear(h, w.mat(p + "self_attn.k_proj.weight", d), nullptr), H, c.rope_theta);
      Mat v = ref_linear(h, w.mat(p + "self_attn.v_proj.weight", d), nullptr);
      Mat a = zeros_mat(T, d);
      for (int64_t hh = 0; hh < H; ++hh) ref_attention(q, k, v, hh * Dh, Dh, a);
      x = plus(x, ref_linear(a, w.mat(p + "self_attn.o_proj.weight", d), nullptr));
      Mat g = ref_rmsnorm(x, w.vec(p + "post_attention_layernorm.weight"), eps);
      const int64_t f = c.ffn_mult * d;
      Mat gate = ref_linear(g, w.mat(p + "mlp.gate_proj.weight", f), nullptr);
      Mat up = ref_linear(g, w.mat(p + "mlp.up_proj.weight", f), nullptr);
      ref::swiglu_forward(gate.v.data(), gate.v.data(), up.v.data(), int64_t(gate.v.size()));
      x = plus(x, ref_linear(gate, w.mat(p + "mlp.down_proj.weight", d), nullptr));
    }
    x = ref_rmsnorm(x, w.vec("model.norm.weight"), eps);
    return ref_linear(x, w.mat("lm_head.weight", V), nullptr);
  }
  // GPT-1
  Mat x = gather("transformer.tokens_embed.weight"), pos = w.mat("transformer.positions_embed.weight", c.n_ctx);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t j = 0; j < d; ++j) x.at(t, j) += pos.at(t, j);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    std::string p = "transformer.h." + std::to_string(l) + ".";
    Vec ab = w.vec(p + "attn.c_attn.bias"), pb = w.vec(p + "attn.c_proj.bias");
    Mat qkv = ref_linear(x, w.mat(p + "attn.c_attn.weight", d), &ab, true);
    Mat q = zeros_mat(T, d), k = zeros_mat(T, d), v = zeros_mat(T, d);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < d; ++j) {
        q.at(t, j) = qkv.at(t, j);
        k.at(t, j) = qkv.at(t, d + j);
        v.at(t, j) = qkv.at(t, 2 * d + j);
      }
    Mat a = zeros_mat(T, d);
    for (int64_t hh = 0; hh < H; ++hh) ref_attention(q, k, v, hh * Dh, Dh, a);
    a = ref_linear(a, w.mat(p + "attn.c_proj.weight", d), &pb, true);
    Mat n = ref_layernorm(plus(x, a), w.vec(p + "ln_1.weight"), w.vec(p + "ln_1.bias"), eps);
    Vec fb = w.vec(p + "mlp.c_fc.bias"), cb = w.vec(p + "mlp.c_proj.bias");
    Mat m = apply(ref_linear(n, w.mat(p + "mlp.c_fc.weight", d), &fb, true), gelu_tanh);
    m = ref_linear(m, w.mat(p + "mlp.c_proj.weight", c.ffn_mult * d), &cb, true);
    x = ref_layernorm(plus(n, m), w.vec(p + "ln_2.weight"), w.vec(p + "ln_2.bias"), eps);
  }
  return ref_linear(x, w.mat("transformer.tokens_embed.weight", V), nullptr);
}

}  // namespace

TEST_CASE("every model's forward matches a plain loop reference built from the state dict") {
  for (const Variant& v : all_variants()) {
    SUBCASE(v.name) {
      auto model = f64_model(v.config, 10);
      {  // Perturb every parameter so norms, biases and zero inits are all exercised.
        NoGradGuard no_grad;
        uint64_t seed = 100;
        for (Tensor& p : model->parameters()) assign_(p, add(p, mul(randn(p.shape(), seed++, kF64), 0.1)));
      }
      Weights w;
      for (auto& [n, t] : model->state_dict()) w.sd[n] = t;
      if (v.config.kind == ModelKind::gpt) w.sd["lm_head.weight"] = model->token_embedding_weight();
      std::vector<int32_t> ids = {3, 7, 1, 10, 4, 2, 5, 9, 8, 6, 0, 0};
      Tensor logits = model->forward(ids_tensor(ids, 2, 6));
      std::vector<double> got = vals(logits);
      for (int64_t b = 0; b < 2; ++b) {
        for (int64_t T : {int64_t(6), int64_t(4)}) {
          std::vector<int32_t> seq(ids.begin() + b * 6, ids.begin() + b * 6 + T);
          Mat ref = reference_logits(v.config, w, seq);
          std::vector<double> out = T == 6 ? std::vector<double>(got.begin() + b * 66, got.begin() + (b + 1) * 66)
                                           : vals(model->forward(ids_tensor(seq, 1, T)));
          REQUIRE(out.size() == ref.v.size());
          double worst = 0;
          for (size_t i = 0; i < out.size(); ++i) worst = std::max(worst, std::abs(out[i] - ref.v[i]));
          CAPTURE(b);
          CAPTURE(T);
          CHECK(worst < 1e-10);
        }
      }
    }
  }
}

// ---- gradients ------------------------------------------------------------------------------

TEST_CASE("every model: gradcheck of the shifted loss w.r.t. every parameter (f64)") {
  for (const Variant& v : all_variants()) {
    SUBCASE(v.name) {
      auto model = f64_model(v.config, 11);
      Tensor ids = sample_ids();
      check_grad_each([&] { return lm_loss(model->forward(ids), ids, kPad); }, model->named_parameters());
    }
  }
}

TEST_CASE("every model: gradcheck w.r.t. the input embeddings, through part of and all the blocks") {
  for (const Variant& v : all_variants()) {
    SUBCASE(v.name) {
      auto model = f64_model(v.config, 12);
      Tensor emb = leaf64({2, 5, 8}, 3);  // T = 5 < n_ctx
      check_grad([&](const std::vector<Tensor>& in) { return model->forward_embeddings(in[0], 1, false); }, {emb});
      check_grad([&](const std::vector<Tensor>& in) { return model->forward_embeddings(in[0]); }, {emb});
    }
  }
}

TEST_CASE("tied weights: the shared tensor's gradient is the sum of the embedding and head contributions") {
  for (ModelKind kind : {ModelKind::gpt, ModelKind::masked_mixer, ModelKind::llama}) {
    CAPTURE(model_kind_name(kind));
    ModelConfig tied = tiny(kind), untied = tiny(kind);
    tied.tie_weights = true;
    untied.tie_weights = false;
    Generator g1(5), g2(6);
    auto mt = make_model(tied, g1, kF64);
    auto mu = make_model(untied, g2, kF64);
    CHECK(mu->num_parameters() == mt->num_parameters() + 11 * 8);
    // Copy the tied model into the untied one (lm_head = the embedding).
    std::map<std::string, Tensor> sd;
    for (auto& [n, p] : mt->state_dict()) sd[n] = p;
    const std::string head = "lm_head.weight";
    CHECK_FALSE(sd.count(head));  // listed once, under the embedding's name
    sd[head] = mt->token_embedding_weight();
    mu->load_state_dict(sd);
    Tensor ids = sample_ids();
    Tensor lt = lm_loss(mt->forward(ids), ids, kPad), lu = lm_loss(mu->forward(ids), ids, kPad);
    CHECK(max_abs_diff(lt, lu) < 1e-12);
    lt.backward();
    lu.backward();
    Tensor head_grad;
    for (auto& [n, p] : mu->named_parameters())
      if (n == head) head_grad = p.grad();
    REQUIRE(head_grad.defined());
    std::vector<double> expect = vals(mu->token_embedding_weight().grad()), hg = vals(head_grad);
    for (size_t i = 0; i < expect.size(); ++i) expect[i] += hg[i];
    std::vector<double> got = vals(mt->token_embedding_weight().grad());
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - expect[i]));
    CHECK(worst < 1e-12);
  }
}

// ---- causality and the input/representation entry points ------------------------------------

TEST_CASE("every model is causal: changing token s leaves logits at positions < s unchanged") {
  for (const Variant& v : all_variants()) {
    SUBCASE(v.name) {
      auto model = f64_model(v.config, 13);
      Tensor ref = model->forward(tiny_sequence_ids());
      for (int64_t s = 0; s < 6; ++s) {
        Tensor out = model->forward(tiny_sequence_ids(s));
        CAPTURE(s);
        if (s > 0) CHECK(max_abs_diff(ref.narrow(1, 0, s), out.narrow(1, 0, s)) == 0.0);
        // ...while position s itself does change (the test is not vacuous).
        CHECK(max_abs_diff(ref.narrow(1, s, 1), out.narrow(1, s, 1)) > 1e-6);
      }
    }
  }
}

TEST_CASE("every model: forward == forward_embeddings(embed); hidden_states are the blocks' outputs") {
  for (const Variant& v : all_variants()) {
    SUBCASE(v.name) {
      auto model = f64_model(v.config, 14);
      Tensor ids = sample_ids();
      Tensor logits = model->forward(ids);
      CHECK(logits.shape() == Shape{2, 6, 11});
      Tensor emb = model->embed(ids);
      CHECK(emb.shape() == Shape{2, 6, 8});
      CHECK(max_abs_diff(logits, model->forward_embeddings(emb)) == 0.0);
      // Layer 0 is the input of the first block: the token embedding (plus positions for GPT).
      Tensor h0 = model->hidden_states(ids, 0);
      if (v.config.kind == ModelKind::gpt) {
        auto& gpt = dynamic_cast<GptLM&>(*model);
        CHECK(max_abs_diff(h0, add(emb, gpt.transformer.positions_embed.weight)) < 1e-15);
      } else {
        CHECK(max_abs_diff(h0, emb) == 0.0);
      }
      // Running the blocks one call at a time matches running them together.
      Tensor h1 = model->hidden_states(ids, 1), h2 = model->hidden_states(ids, 2);
      CHECK(h1.shape() == Shape{2, 6, 8});
      CHECK(max_abs_diff(h1, h2) > 1e-6);
      CHECK(max_abs_diff(model->forward_embeddings(emb, -1, false), h2) == 0.0);
      CHECK_THROWS_WITH_AS(model->hidden_states(ids, 3), doctest::Contains("layer 3 out of range"), Error);
      CHECK_THROWS_AS(model->forward_embeddings(randn({2, 6, 7}, 1, kF64)), Error);
      CHECK_THROWS_AS(model->forward_embeddings(randn({2, 6, 8}, 1)), Error);  // f32 into an f64 model
      CHECK_THROWS_AS(model->forward(from_vector(std::vector<int32_t>{1, 11}, Shape{1, 2})), Error);  // id >= V
    }
  }
  // The mixer has no final norm: its head applies to the last block's output directly; Llama's
  // head follows model.norm.
  Generator gen(15);
  auto mixer = make_model(tiny(ModelKind::masked_mixer), gen, kF64);
  auto& mm = dynamic_cast<MaskedMixerLM&>(*mixer);
  Tensor ids = sample_ids();
  CHECK(max_abs_diff(mixer->forward(ids), mm.lm_head->forward(mixer->hidden_states(ids, 2))) == 0.0);
  auto llama = make_model(tiny(ModelKind::llama), gen, kF64);
  auto& ll = dynamic_cast<LlamaLM&>(*llama);
  CHECK(max_abs_diff(llama->forward(ids), ll.lm_head->forward(ll.model.norm.forward(llama->hidden_states(ids, 2)))) <
        1e-15);
}

TEST_CASE("sequences shorter than n_ctx equal the prefix of the full-length run; longer ones throw") {
  for (const Variant& v : all_variants()) {
    SUBCASE(v.name) {
      auto model = f64_model(v.config, 16);
      std::vector<int32_t> full = {3, 7, 1, 10, 4, 2};
      Tensor ref = model->forward(ids_tensor(full, 1, 6));
      for (int64_t T = 1; T < 6; ++T) {
        std::vector<int32_t> prefix(full.begin(), full.begin() + T);
        CAPTURE(T);
        CHECK(max_abs_diff(model->forward(ids_tensor(prefix, 1, T)), ref.narrow(1, 0, T)) < 1e-13);
      }
      Tensor too_long = ids_tensor({1, 2, 3, 4, 5, 6, 7}, 1, 7);
      if (v.config.kind == ModelKind::llama)
        CHECK(model->forward(too_long).shape() == Shape{1, 7, 11});  // RoPE has no length limit
      else
        CHECK_THROWS_WITH_AS(model->forward(too_long), doctest::Contains("exceeds n_ctx = 6"), Error);
    }
  }
}

TEST_CASE("f32 models hold the f64 twin's weights and agree with it") {
  for (const Variant& v : all_variants()) {
    SUBCASE(v.name) {
      Generator g1(17), g2(17);
      auto m32 = make_model(v.config, g1);
      auto m64 = make_model(v.config, g2, kF64);
      auto p32 = m32->parameters(), p64 = m64->parameters();
      REQUIRE(p32.size() == p64.size());
      for (size_t i = 0; i < p32.size(); ++i) {
        CHECK(p32[i].dtype() == DType::f32);
        CHECK(vals(p32[i]) == vals(p64[i]));
      }
      Tensor ids = sample_ids();
      CHECK(max_abs_diff(m32->forward(ids), m64->forward(ids)) < 1e-4);
      // Module::to(f64) turns the f32 model into the f64 one.
      m32->to(DType::f64);
      CHECK(max_abs_diff(m32->forward(ids), m64->forward(ids)) < 1e-12);
    }
  }
}

// ---- parameter counts --------------------------------------------------------------------------

TEST_CASE("parameter counts: docs/paper.md A.11 / B.4 tables, and the formula matches the built models") {
  auto cfg = [](ModelKind k, int64_t d, int64_t L, int64_t n, int64_t V) {
    ModelConfig c;
    c.kind = k;
    c.d_model = d;
    c.n_layers = L;
    c.n_ctx = n;
    c.vocab_size = V;
    return c;
  };
  const ModelKind M = ModelKind::masked_mixer, LL = ModelKind::llama, G = ModelKind::gpt;
  struct Row {
    ModelConfig c;
    int64_t params;
  };
  std::vector<Row> table = {
      {cfg(M, 256, 8, 512, 4096), 8411136},     {cfg(M, 512, 8, 512, 4096), 23109632},
      {cfg(M, 1024, 8, 512, 4096), 77672448},   {cfg(M, 1024, 4, 512, 4096), 43030528},
      {cfg(M, 2048, 8, 512, 4096), 287461376},  {cfg(M, 512, 16, 512, 8000), 46022656},
      {cfg(M, 512, 32, 512, 8000), 83853312},   {cfg(M, 1024, 16, 512, 8000), 154951680},
      {cfg(M, 1024, 8, 1024, 8000), 91963392},  {cfg(LL, 128, 8, 512, 4096), 3147904},
      {cfg(LL, 256, 8, 512, 4096), 10490112},   {cfg(LL, 512, 8, 512, 4096), 37757440},
      {cfg(LL, 1024, 8, 512, 4096), 142623744}, {cfg(LL, 512, 16, 512, 8000), 75317760},
      {cfg(G, 512, 8, 512, 4096), 27578368},
  };
  for (const Row& r : table) {
    CAPTURE(r.c.summary());
    CHECK(r.c.expected_num_parameters() == r.params);
  }
  // The formula against real models: the three sizes the brief names, allocated for real.
  for (size_t i : {size_t(0), size_t(11), size_t(14)}) {
    CAPTURE(table[i].c.summary());
    Generator gen(1);
    auto m = make_model(table[i].c, gen);
    CHECK(m->num_parameters() == table[i].params);
  }
  // ...and for every form and tying choice at small sizes.
  for (const Variant& v : all_variants()) {
    for (bool tie : {false, true}) {
      ModelConfig c = v.config;
      c.tie_weights = tie;
      c.mixer_expansion = 3;
      c.mixer_heads = 4;
      c.ffn_mult = 3;
      CAPTURE(c.summary());
      Generator gen(2);
      CHECK(make_model(c, gen)->num_parameters() == c.expected_num_parameters());
    }
  }
}

// ---- state dicts ---------------------------------------------------------------------------------

TEST_CASE("state_dict names and shapes follow the paper's PyTorch code and HF") {
  auto layout = [](const Module& m) {
    std::vector<std::pair<std::string, Shape>> r;
    for (auto& [n, t] : m.state_dict()) r.emplace_back(n, t.shape());
    return r;
  };
  using L = std::vector<std::pair<std::string, Shape>>;
  Generator gen(3);
  const int64_t V = 11, d = 8, n = 6, f = 32;
  auto block_common = [&](int i) {
    std::string p = "mixerblocks." + std::to_string(i) + ".";
    return L{{p + "patch_layernorm.weight", {d}}, {p + "patch_layernorm.bias", {d}}, {p + "seq_layernorm.weight", {d}},
             {p + "seq_layernorm.bias", {d}},     {p + "patch_ff.0.weight", {f, d}}, {p + "patch_ff.0.bias", {f}},
             {p + "patch_ff.2.weight", {d, f}},   {p + "patch_ff.2.bias", {d}}};
  };
  SUBCASE("flat mixer") {
    L expect = {{"wte.weight", {V, d}}};
    for (int i = 0; i < 2; ++i) {
      for (auto& e : block_common(i)) expect.push_back(e);
      std::string p = "mixerblocks." + std::to_string(i) + ".";
      expect.push_back({p + "conv.weight", {n, n, 1}});
      expect.push_back({p + "conv.bias", {n}});
    }
    expect.push_back({"lm_head.weight", {V, d}});
    CHECK(layout(*make_model(tiny(ModelKind::masked_mixer), gen)) == expect);
  }
  SUBCASE("expanded mixer") {
    auto m = make_model(tiny(ModelKind::masked_mixer, MixerForm::expanded), gen);
    L got = layout(*m);
    L expect = {{"mixerblocks.0.conv.0.weight", {2 * n, n, 1}},
                {"mixerblocks.0.conv.0.bias", {2 * n}},
                {"mixerblocks.0.conv.2.weight", {n, 2 * n, 1}},
                {"mixerblocks.0.conv.2.bias", {n}}};
    CHECK(L(got.begin() + 9, got.begin() + 13) == expect);
    CHECK(got.size() == 1 + 2 * 12 + 1);
  }
  SUBCASE("multihead mixer") {
    auto m = make_model(tiny(ModelKind::masked_mixer, MixerForm::multihead), gen);
    L got = layout(*m);
    L expect = {{"mixerblocks.0.conv.proj_head.weight", {d, d}}, {"mixerblocks.0.conv.proj_head.bias", {d}},
                {"mixerblocks.0.conv.convs.weight", {2, n, n}},  {"mixerblocks.0.conv.convs.bias", {2, n}},
                {"mixerblocks.0.conv.out_proj.weight", {d, d}},  {"mixerblocks.0.conv.out_proj.bias", {d}}};
    CHECK(L(got.begin() + 9, got.begin() + 15) == expect);
  }
  SUBCASE("llama") {
    L expect = {{"model.embed_tokens.weight", {V, d}}};
    for (int i = 0; i < 2; ++i) {
      std::string p = "model.layers." + std::to_string(i) + ".";
      for (const char* w : {"q_proj", "k_proj", "v_proj", "o_proj"})
        expect.push_back({p + "self_attn." + w + ".weight", {d, d}});
      expect.push_back({p + "mlp.gate_proj.weight", {f, d}});
      expect.push_back({p + "mlp.up_proj.weight", {f, d}});
      expect.push_back({p + "mlp.down_proj.weight", {d, f}});
      expect.push_back({p + "input_layernorm.weight", {d}});
      expect.push_back({p + "post_attention_layernorm.weight", {d}});
    }
    expect.push_back({"model.norm.weight", {d}});
    expect.push_back({"lm_head.weight", {V, d}});
    CHECK(layout(*make_model(tiny(ModelKind::llama), gen)) == expect);
  }
  SUBCASE("gpt") {
    L expect = {{"transformer.tokens_embed.weight", {V, d}}, {"transformer.positions_embed.weight", {n, d}}};
    for (int i = 0; i < 2; ++i) {
      std::string p = "transformer.h." + std::to_string(i) + ".";
      expect.push_back({p + "attn.c_attn.weight", {d, 3 * d}});
      expect.push_back({p + "attn.c_attn.bias", {3 * d}});
      expect.push_back({p + "attn.c_proj.weight", {d, d}});
      expect.push_back({p + "attn.c_proj.bias", {d}});
      expect.push_back({p + "ln_1.weight", {d}});
      expect.push_back({p + "ln_1.bias", {d}});
      expect.push_back({p + "mlp.c_fc.weight", {d, f}});
      expect.push_back({p + "mlp.c_fc.bias", {f}});
      expect.push_back({p + "mlp.c_proj.weight", {f, d}});
      expect.push_back({p + "mlp.c_proj.bias", {d}});
      expect.push_back({p + "ln_2.weight", {d}});
      expect.push_back({p + "ln_2.bias", {d}});
    }
    auto m = make_model(tiny(ModelKind::gpt), gen);
    CHECK(layout(*m) == expect);  // lm_head.weight is the tied tokens_embed, listed once
    auto& g = dynamic_cast<GptLM&>(*m);
    CHECK(g.lm_head->weight.same(g.transformer.tokens_embed.weight));
  }
}

TEST_CASE("load_state_dict: round trip between models, tied aliases, and clear errors") {
  Generator g1(20), g2(21);
  ModelConfig c = tiny(ModelKind::masked_mixer);
  auto a = make_model(c, g1), b = make_model(c, g2);
  Tensor ids = sample_ids();
  CHECK(max_abs_diff(a->forward(ids), b->forward(ids)) > 1e-3);
  b->load_state_dict(a->state_dict());
  CHECK(max_abs_diff(a->forward(ids), b->forward(ids)) == 0.0);

  // A checkpoint of another size: every mismatch named with both shapes, nothing written.
  ModelConfig big = c;
  big.n_ctx = 7;
  big.d_model = 12;
  auto other = make_model(big, g1);
  try {
    b->load_state_dict(other->state_dict());
    FAIL("expected an error");
  } catch (const Error& e) {
    std::string m = e.what();
    CHECK(m.find("mixerblocks.0.conv.weight: checkpoint has [7, 7, 1], model has [6, 6, 1]") != std::string::npos);
    CHECK(m.find("wte.weight: checkpoint has [11, 12], model has [11, 8]") != std::string::npos);
    CHECK(m.find("lm_head.weight: checkpoint has [11, 12], model has [11, 8]") != std::string::npos);
  }
  CHECK(max_abs_diff(a->forward(ids), b->forward(ids)) == 0.0);

  // A llama checkpoint into a mixer: missing and unexpected names listed.
  Generator g3(22);
  auto llama = make_model(tiny(ModelKind::llama), g3);
  CHECK_THROWS_WITH_AS(b->load_state_dict(llama->state_dict()),
                       doctest::Contains("missing from the checkpoint: wte.weight, mixerblocks.0.patch_layernorm.weight"),
                       Error);
  CHECK_THROWS_WITH_AS(b->load_state_dict(llama->state_dict()),
                       doctest::Contains("unexpected in the checkpoint (not in the model): model.embed_tokens.weight"),
                       Error);

  // GPT: a PyTorch state dict lists the tied head under both names; HF safetensors files under
  // the embedding's only. Both load.
  auto gpt_a = make_model(tiny(ModelKind::gpt), g1), gpt_b = make_model(tiny(ModelKind::gpt), g2);
  StateDict sd = gpt_a->state_dict();
  sd.emplace_back("lm_head.weight", gpt_a->token_embedding_weight());
  gpt_b->load_state_dict(sd);
  CHECK(max_abs_diff(gpt_a->forward(ids), gpt_b->forward(ids)) == 0.0);
}

// ---- loss and training --------------------------------------------------------------------------

TEST_CASE("lm_loss: shifted mean cross-entropy over non-pad targets") {
  const int64_t B = 2, T = 5, V = 4;
  Tensor logits = randn({B, T, V}, 30, kF64);
  Tensor ids = ids_tensor({1, 2, 3, 0, 0, 2, 2, 1, 3, 1}, B, T);  // pad 0 at the end of sequence 0
  std::vector<double> lv = vals(logits);
  std::vector<int32_t> iv = ids.to_vector<int32_t>();
  double total = 0;
  int count = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t) {
      int32_t target = iv[size_t(b * T + t + 1)];
      if (target == kPad) continue;
      const double* row = &lv[size_t((b * T + t) * V)];
      double m = *std::max_element(row, row + V), s = 0;
      for (int64_t k = 0; k < V; ++k) s += std::exp(row[k] - m);
      total += m + std::log(s) - row[target];
      ++count;
    }
  CHECK(count == 6);
  CHECK(lm_loss(logits, ids, kPad).item() == doctest::Approx(total / count).epsilon(1e-12));
  // Logits whose target is a pad (and the last position) do not matter; their gradient is 0.
  Tensor leaf = logits.detach();
  leaf.set_requires_grad(true);
  lm_loss(leaf, ids, kPad).backward();
  std::vector<double> g = vals(leaf.grad());
  for (int64_t t : {2, 3, 4})
    for (int64_t k = 0; k < V; ++k) CHECK(g[size_t((0 * T + t) * V + k)] == 0.0);
  for (int64_t k = 0; k < V; ++k) CHECK(g[size_t((1 * T + 4) * V + k)] == 0.0);
  CHECK(std::abs(g[size_t(1 * V)]) > 0);
  // pad_id < 0 scores everything (8 targets).
  double all_rows = lm_loss(logits, ids, -1).item();
  CHECK(all_rows != doctest::Approx(total / count));
  check_grad([&](const std::vector<Tensor>& in) { return lm_loss(in[0], ids, kPad); }, {leaf64({B, T, V}, 31)});
  CHECK_THROWS_WITH_AS(lm_loss(randn({1, 1, V}, 1, kF64), ids_tensor({1}, 1, 1), kPad),
                       doctest::Contains("at least 2 positions"), Error);
  CHECK_THROWS_AS(lm_loss(logits, ids_tensor({1, 2, 3, 0, 0}, 1, 5), kPad), Error);
}

TEST_CASE("a tiny model's loss falls over 30 SGD steps on a repeated batch (f32)") {
  for (const Variant& v : all_variants()) {
    SUBCASE(v.name) {
      Generator gen(40);
      auto model = make_model(v.config, gen);
      SGD opt(model->parameters(), SGDOptions{0.1, 0.9});
      Tensor ids = sample_ids();
      const std::pair<double, double> losses = minimize(opt, 30, [&] { return lm_loss(model->forward(ids), ids, kPad); });
      const double first = losses.first, last = losses.second;
      INFO("loss " << first << " -> " << last);
      CHECK(std::isfinite(last));
      CHECK(last < 0.5 * first);
    }
  }
}

// ---- config ----------------------------------------------------------------------------------------

TEST_CASE("ModelConfig: defaults per family, validation names the bad field, names parse") {
  ModelConfig c;
  CHECK_FALSE(c.resolved_tie_weights());
  CHECK(c.resolved_norm_eps() == 1e-5);
  c.kind = ModelKind::llama;
  CHECK_FALSE(c.resolved_tie_weights());
  CHECK(c.resolved_norm_eps() == 1e-6);
  c.kind = ModelKind::gpt;
  CHECK(c.resolved_tie_weights());
  CHECK(c.resolved_norm_eps() == 1e-5);
  c.tie_weights = false;
  CHECK_FALSE(c.resolved_tie_weights());
  c.validate();

  auto bad = [](auto edit, const char* message) {
    ModelConfig m = tiny(ModelKind::llama);
    edit(m);
    CHECK_THROWS_WITH_AS(m.validate(), doctest::Contains(message), Error);
    Generator gen(1);
    CHECK_THROWS_WITH_AS(make_model(m, gen), doctest::Contains(message), Error);
  };
  bad([](ModelConfig& m) { m.vocab_size = 0; }, "ModelConfig.vocab_size = 0 must be positive");
  bad([](ModelConfig& m) { m.d_model = -1; }, "ModelConfig.d_model = -1 must be positive");
  bad([](ModelConfig& m) { m.n_layers = 0; }, "ModelConfig.n_layers");
  bad([](ModelConfig& m) { m.n_ctx = 0; }, "ModelConfig.n_ctx");
  bad([](ModelConfig& m) { m.ffn_mult = 0; }, "ModelConfig.ffn_mult");
  bad([](ModelConfig& m) { m.n_heads = 3; }, "ModelConfig.n_heads = 3 must divide d_model = 8");
  bad([](ModelConfig& m) { m.n_heads = 8; }, "head_dim 1, which must be even for RoPE");
  bad([](ModelConfig& m) { m.norm_eps = 0.0; }, "ModelConfig.norm_eps");
  bad([](ModelConfig& m) { m.rope_theta = -1; }, "ModelConfig.rope_theta");
  bad([](ModelConfig& m) { m.vocab_size = int64_t(1) << 40; }, "does not fit the i32 token ids");
  // Absurd sizes fail here instead of overflowing or allocating for hours.
  bad([](ModelConfig& m) { m.n_layers = 4294967297; }, "ModelConfig.n_layers = 4294967297 is too large");
  bad([](ModelConfig& m) { m.d_model = int64_t(1) << 40; }, "ModelConfig.d_model = 1099511627776 is too large");
  bad([](ModelConfig& m) { m.n_layers = 1000000000; }, "parameters, more than the limit");
  bad([](ModelConfig& m) { m.d_model = 2000000000; }, "parameters, more than the limit");
  bad(
      [](ModelConfig& m) {
        m.kind = ModelKind::masked_mixer;
        m.n_ctx = 2000000000;  // the flat mixer's [n_ctx, n_ctx] matrix alone
      },
      "parameters, more than the limit");
  bad(
      [](ModelConfig& m) {
        m.kind = ModelKind::masked_mixer;
        m.mixer_form = MixerForm::multihead;
        m.mixer_heads = 3;
      },
      "ModelConfig.mixer_heads = 3 must divide d_model = 8");
  bad(
      [](ModelConfig& m) {
        m.kind = ModelKind::masked_mixer;
        m.mixer_form = MixerForm::expanded;
        m.mixer_expansion = 0;
      },
      "ModelConfig.mixer_expansion");
  // A mixer ignores the attention fields.
  ModelConfig mixer = tiny(ModelKind::masked_mixer);
  mixer.n_heads = 3;
  mixer.validate();

  CHECK(parse_model_kind("gpt") == ModelKind::gpt);
  CHECK(parse_model_kind("masked_mixer") == ModelKind::masked_mixer);
  CHECK(parse_mixer_form("expanded") == MixerForm::expanded);
  CHECK_THROWS_WITH_AS(parse_model_kind("mixer"), doctest::Contains("expected masked_mixer, llama or gpt"), Error);
  CHECK_THROWS_WITH_AS(parse_mixer_form("wide"), doctest::Contains("expected flat, expanded, multihead or kernel"),
                       Error);
  CHECK(parse_mixer_form("kernel") == MixerForm::kernel);
  CHECK(tiny(ModelKind::masked_mixer, MixerForm::kernel).summary() == "masked_mixer d=8 L=2 n=6 V=11 kernel k=4");
  CHECK(tiny(ModelKind::masked_mixer, MixerForm::expanded).summary() == "masked_mixer d=8 L=2 n=6 V=11 expanded e=2");
  // A model class refuses another family's config.
  Generator gen(1);
  CHECK_THROWS_WITH_AS(GptLM(tiny(ModelKind::llama), gen), doctest::Contains("GptLM: the config is for a llama model"),
                       Error);
}

TEST_CASE("same seed, same model; CUDA parity where a GPU is present") {
  ModelConfig c = tiny(ModelKind::masked_mixer);
  Generator g1(50), g2(50);
  auto a = make_model(c, g1), b = make_model(c, g2);
  auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) CHECK(vals(pa[i]) == vals(pb[i]));
  if (!backend_available(DeviceType::CUDA)) return;
  for (const Variant& v : all_variants()) {
    CAPTURE(v.name);
    Generator gc(51), gg(51);
    auto cpu = make_model(v.config, gc);
    auto gpu = make_model(v.config, gg, TensorOptions{DType::f32, kCUDA});
    auto pc = cpu->parameters(), pg = gpu->parameters();
    for (size_t i = 0; i < pc.size(); ++i) CHECK(max_abs_diff(pc[i], pg[i].to(kCPU)) < 1e-6);
    Tensor ids = sample_ids();
    CHECK(max_abs_diff(cpu->forward(ids), gpu->forward(ids.to(kCUDA)).to(kCPU)) < 1e-4);
    cpu->to(kCUDA);
    CHECK(cpu->token_embedding_weight().device() == kCUDA);
    CHECK(max_abs_diff(cpu->forward(ids.to(kCUDA)).to(kCPU), gpu->forward(ids.to(kCUDA)).to(kCPU)) < 1e-6);
  }
}
