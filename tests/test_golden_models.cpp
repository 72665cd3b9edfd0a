// Golden values from PyTorch for whole models: the paper's tiny masked mixers (flat, expanded,
// multi-head, kernel-4), Llama and GPT-1, against fixtures written by tests/golden/make_model_fixtures.py
// (plain-PyTorch twins with the same parameter names, float64 reference; see tests/golden/README.md).
//
// Per fixture and per dtype (f32 and f64): build the model with make_model from the config in the
// fixture's metadata, load the fixture's weights by name (load_state_dict, strict), then check
//   - logits [B, T, V] and the shifted causal-LM loss (lm_loss with the fixture's pad_id),
//   - d loss / d p for EVERY parameter (the mixers' conv weights: upper triangle exactly 0),
//   - the loss before each of 10 AdamW steps from the same weights.
// f32 results are compared with the float64 reference, f64 results with the same reference.
// Tolerances: |got - want| <= atol + rtol |want|. Set MG_GOLDEN_VERBOSE=1 to print the worst
// error of every comparison.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "core/safetensors.h"
#include "nn/lm.h"
#include "nn/optim.h"
#include "tests/golden_compare.h"
#include "tests/test_helpers.h"

using namespace mg;
using namespace mg::test;

namespace {


// Logits and loss: f32 rtol 1e-4 (atol 1e-5 for logits near 0); f64 1e-10 / 1e-12.
constexpr Tols kOutput{{1e-4, 1e-5}, {1e-10, 1e-12}};
// Parameter gradients: f32 rtol 1e-4 with atol 1e-6 (the gradients are O(1e-3..1e-1); an f32
// backward through two blocks leaves absolute errors of a few 1e-8 on entries that are ~0).
// f64 1e-10 / 1e-13.
constexpr Tols kGrad{{1e-4, 1e-6}, {1e-10, 1e-13}};
// The 10 AdamW-step losses: f32 rtol 1e-4 (the trajectory amplifies f32 rounding only mildly
// over 10 steps); f64 1e-9 / 1e-12.
constexpr Tols kAdamW{{1e-4, 1e-6}, {1e-9, 1e-12}};

const char* const kModels[] = {"model_mixer_flat", "model_mixer_expanded", "model_mixer_multihead",
                               "model_mixer_kernel", "model_llama",      "model_gpt"};


std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(item);
  return out;
}

struct ModelFixture {
  std::string name;
  SafetensorsFile file;
  explicit ModelFixture(const std::string& n)
      : name(n), file(load_safetensors(std::string(MG_SOURCE_DIR "/tests/golden/") + n + ".safetensors")) {}

  const std::string& meta(const std::string& key) const {
    auto it = file.metadata.find(key);
    if (it == file.metadata.end()) throw Error(name + ": metadata lacks '" + key + "'");
    return it->second;
  }
  int64_t meta_int(const std::string& key) const { return std::stoll(meta(key)); }
  double meta_double(const std::string& key) const { return std::stod(meta(key)); }

  // The stored floating tensor `key` in dtype dt (F64 copy, or the ".f32" one).
  const Tensor& ref(const std::string& key, DType dt) const {
    return dt == DType::f32 ? file.get(key + ".f32") : file.get(key);
  }
  Tensor ids() const { return file.get("ids"); }
  int32_t pad_id() const { return int32_t(meta_int("pad_id")); }
  std::vector<std::string> params() const { return split_commas(meta("params")); }

  ModelConfig config() const {
    ModelConfig c;
    c.kind = parse_model_kind(meta("kind"));
    c.vocab_size = meta_int("vocab_size");
    c.d_model = meta_int("d_model");
    c.n_layers = meta_int("n_layers");
    c.n_ctx = meta_int("n_ctx");
    c.n_heads = meta_int("n_heads");
    c.ffn_mult = meta_int("ffn_mult");
    if (c.kind == ModelKind::masked_mixer) {
      c.mixer_form = parse_mixer_form(meta("mixer_form"));
      c.mixer_expansion = meta_int("mixer_expansion");
      c.mixer_heads = meta_int("mixer_heads");
      if (c.mixer_form == MixerForm::kernel) c.mixer_kernel = meta_int("mixer_kernel");
    }
    if (c.kind == ModelKind::llama) c.rope_theta = meta_double("rope_theta");
    c.tie_weights = meta("tie_weights") == "true";
    c.norm_eps = meta_double("norm_eps");
    return c;
  }

  // make_model (with an arbitrary seed: every weight is then overwritten) + the fixture's weights.
  std::unique_ptr<LanguageModel> model(DType dt) const {
    Generator gen(7);
    auto m = make_model(config(), gen, TensorOptions{dt});
    std::map<std::string, Tensor> state;
    for (const auto& p : params()) state[p] = ref("param." + p, dt);
    m->load_state_dict(state, /*strict=*/true);
    return m;
  }
};

// The mixers' token-mixing weights, whose upper triangle ([out, in] view, column > row) is masked.
bool is_mixing_weight(const ModelConfig& c, const std::string& p) {
  if (c.kind != ModelKind::masked_mixer) return false;
  return p.find(".conv.") != std::string::npos && p.size() >= 7 && p.compare(p.size() - 7, 7, ".weight") == 0 &&
         (c.mixer_form != MixerForm::multihead || p.find(".convs.") != std::string::npos);
}

// Entries strictly above the diagonal of each [out, in] matrix: flat/expanded [out, in, 1],
// kernel [out, in, k] (every tap), multihead [H, n, n].
std::vector<size_t> upper_triangle(const ModelConfig& cfg, const Tensor& w) {
  const bool heads = cfg.mixer_form == MixerForm::multihead;
  const int64_t H = heads ? w.size(0) : 1, R = heads ? w.size(1) : w.size(0), C = heads ? w.size(2) : w.size(1);
  const int64_t K = heads ? 1 : w.size(2);
  std::vector<size_t> idx;
  for (int64_t h = 0; h < H; ++h)
    for (int64_t r = 0; r < R; ++r)
      for (int64_t c = r + 1; c < C; ++c)
        for (int64_t t = 0; t < K; ++t) idx.push_back(size_t(((h * R + r) * C + c) * K + t));
  return idx;
}

}  // namespace

TEST_CASE("golden models: fixtures are present, written by torch, and match the models' parameter lists") {
  for (const char* name : kModels) {
    CAPTURE(name);
    ModelFixture f(name);
    CHECK(f.meta("model") == name);
    CHECK(f.meta("torch_version").rfind("1.", 0) == 0);
    const ModelConfig c = f.config();
    Generator gen(1);
    auto m = make_model(c, gen);
    std::set<std::string> ours, theirs;
    for (const auto& [p, t] : m->named_parameters()) ours.insert(p);
    for (const auto& p : f.params()) {
      theirs.insert(p);
      // Every parameter comes with its value and its gradient, in both dtypes.
      for (const std::string& key : {"param." + p, "grad." + p})
        for (DType dt : {DType::f32, DType::f64}) {
          CAPTURE(key);
          REQUIRE(f.file.contains(dt == DType::f32 ? key + ".f32" : key));
          CHECK(f.ref(key, dt).shape() == f.ref("param." + p, DType::f64).shape());
        }
    }
    CHECK(ours == theirs);
    CHECK(m->num_parameters() == c.expected_num_parameters());
    // The stored mixing weights keep a non-zero upper triangle: the checks below then prove that
    // our op ignores it (torch's forward used tril(W)).
    for (const auto& p : f.params())
      if (is_mixing_weight(c, p)) {
        CAPTURE(p);
        const std::vector<double> w = as_f64(f.ref("param." + p, DType::f64));
        size_t nonzero = 0;
        for (size_t i : upper_triangle(c, f.ref("param." + p, DType::f64))) nonzero += w[i] != 0;
        CHECK(nonzero > 10);
      }
  }
}

TEST_CASE("golden models: logits, loss and every parameter gradient (f32 and f64)") {
  for (const char* name : kModels) {
    ModelFixture f(name);
    const ModelConfig c = f.config();
    for (DType dt : {DType::f32, DType::f64}) {
      const std::string where = f.name + " " + dtype_name(dt) + ": ";
      auto m = f.model(dt);
      Tensor ids = f.ids();
      Tensor logits = m->forward(ids);
      expect_close(logits, f.ref("logits", dt), kOutput.get(dt), where + "logits");
      Tensor loss = lm_loss(logits, ids, f.pad_id());
      expect_close(loss, f.ref("loss", dt), kOutput.get(dt), where + "loss");
      loss.backward();
      for (const auto& entry : m->named_parameters()) {
        const std::string& p = entry.first;
        const Tensor& t = entry.second;
        expect_close(t.grad(), f.ref("grad." + p, dt), kGrad.get(dt), where + "grad." + p);
        if (is_mixing_weight(c, p) && t.grad().defined()) {
          INFO(where << p << ": the masked upper triangle's gradient must be exactly 0");
          const std::vector<double> g = as_f64(t.grad());
          size_t nonzero = 0;
          for (size_t i : upper_triangle(c, t)) nonzero += g[i] != 0;
          CHECK(nonzero == 0);
        }
      }
    }
  }
}

TEST_CASE("golden models: loss before each of 10 AdamW steps (f32 and f64)") {
  for (const char* name : kModels) {
    ModelFixture f(name);
    for (DType dt : {DType::f32, DType::f64}) {
      const std::string where = f.name + " " + dtype_name(dt) + ": ";
      auto m = f.model(dt);
      AdamWOptions o;
      o.lr = f.meta_double("lr");
      o.weight_decay = f.meta_double("weight_decay");
      AdamW opt(m->parameters(), o);
      Tensor ids = f.ids();
      const int64_t steps = f.meta_int("steps");
      std::vector<double> losses;
      for (int64_t s = 0; s < steps; ++s) {
        opt.zero_grad();
        Tensor loss = lm_loss(m->forward(ids), ids, f.pad_id());
        losses.push_back(loss.item());
        loss.backward();
        opt.step();
      }
      expect_close(from_vector(losses, Shape{steps}, TensorOptions{DType::f64}), f.ref("adamw.losses", DType::f64),
                   kAdamW.get(dt), where + "adamw.losses");
      // The trajectory is a real one: the loss falls.
      CHECK(losses.back() < 0.5 * losses.front());
    }
  }
}
