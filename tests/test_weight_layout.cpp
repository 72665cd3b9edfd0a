// nn/weight_layout: our parameters in the paper's PyTorch layout and Hugging Face's, and back
// (the end-to-end check against torch is tests/golden/test_export_torch.py).
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "nn/lm.h"
#include "nn/weight_layout.h"
#include "tests/model_configs.h"

namespace {

using namespace mg;

std::map<std::string, Tensor> as_map(const StateDict& sd) {
  std::map<std::string, Tensor> m;
  for (const auto& entry : sd) {
    const std::string& n = entry.first;
    const Tensor& t = entry.second;
    CHECK_MESSAGE(!m.count(n), "name listed twice: ", n);
    m[n] = t;
  }
  return m;
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.shape() == b.shape() && a.contiguous().to_vector<float>() == b.contiguous().to_vector<float>();
}

// Exports `config`'s model, imports the tensors into a fresh model of another seed, and checks
// that every parameter came back.
void round_trip(const ModelConfig& config, WeightLayout layout) {
  Generator g1(1), g2(2);
  auto a = make_model(config, g1);
  auto b = make_model(config, g2);
  const auto exported = as_map(export_state_dict(*a, layout));
  b->load_state_dict(import_state_dict(exported, config, layout), /*strict=*/true);
  for (const auto& entry : a->state_dict()) {
    const std::string& name = entry.first;
    const Tensor& t = entry.second;
    INFO(name);
    bool found = false;
    for (const auto& [nb, tb] : b->state_dict())
      if (nb == name) {
        CHECK(same_values(t, tb));
        found = true;
      }
    CHECK(found);
  }
}

}  // namespace

TEST_SUITE("weight_layout") {

TEST_CASE("names already PyTorch's pass unchanged; a tied lm_head is listed under both names") {
  for (ModelKind kind : {ModelKind::masked_mixer, ModelKind::llama, ModelKind::gpt}) {
    ModelConfig c = test::tiny_model(kind);
    c.tie_weights = true;
    Generator gen(3);
    auto m = make_model(c, gen);
    const auto ex = as_map(export_state_dict(*m, WeightLayout::hf));
    CHECK(ex.size() == m->state_dict().size() + 1);
    REQUIRE(ex.count("lm_head.weight"));
    CHECK(same_values(ex.at("lm_head.weight"), m->token_embedding_weight()));
    for (const auto& [n, t] : m->state_dict()) CHECK(ex.count(n));
    round_trip(c, WeightLayout::hf);
  }
  ModelConfig untied = test::tiny_model(ModelKind::llama);
  Generator gen(4);
  auto m = make_model(untied, gen);
  CHECK(export_state_dict(*m, WeightLayout::pytorch).size() == m->state_dict().size());
}

TEST_CASE("the multi-head mixer gets the paper's per-head modules and comes back") {
  const ModelConfig c = test::tiny_model(ModelKind::masked_mixer, MixerForm::multihead);  // d 8, n 6, H 2
  Generator gen(5);
  auto m = make_model(c, gen);
  const auto ex = as_map(export_state_dict(*m, WeightLayout::pytorch));
  const std::string p = "mixerblocks.1.conv.";
  CHECK_FALSE(ex.count(p + "convs.weight"));
  REQUIRE(ex.count(p + "convs.1.weight"));
  CHECK(ex.at(p + "convs.1.weight").shape() == Shape{6, 6, 1});
  CHECK(ex.at(p + "convs.1.bias").shape() == Shape{6});
  CHECK(ex.at(p + "proj_head.0.weight").shape() == Shape{4, 8});
  CHECK(ex.at(p + "proj_head.1.bias").shape() == Shape{4});
  // Head 1 of the stacked tensors.
  std::map<std::string, Tensor> ours;
  for (const auto& [n, t] : m->state_dict()) ours[n] = t;
  CHECK(same_values(ex.at(p + "convs.1.weight").squeeze(2), ours.at(p + "convs.weight").select(0, 1)));
  CHECK(same_values(ex.at(p + "proj_head.1.weight"), ours.at(p + "proj_head.weight").narrow(0, 4, 4)));
  round_trip(c, WeightLayout::pytorch);
  // Our stacked names are accepted as they are.
  Generator g2(6);
  auto b = make_model(c, g2);
  b->load_state_dict(import_state_dict(ours, c, WeightLayout::pytorch), true);

  // One head missing: an error naming it.
  auto partial = ex;
  partial.erase(p + "convs.0.weight");
  try {
    import_state_dict(partial, c, WeightLayout::pytorch);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).find(p + "convs.0.weight") != std::string::npos);
  }
}

TEST_CASE("an unknown tensor passes through, so the strict load names it") {
  const ModelConfig c = test::tiny_model(ModelKind::gpt);
  Generator gen(7);
  auto m = make_model(c, gen);
  auto ex = as_map(export_state_dict(*m, WeightLayout::hf));
  ex["transformer.h.0.attn.masked_bias"] = ex.begin()->second;
  ex.erase("transformer.h.1.ln_2.bias");
  try {
    m->load_state_dict(import_state_dict(ex, c, WeightLayout::hf), true);
    FAIL("no error");
  } catch (const Error& e) {
    const std::string w = e.what();
    CHECK(w.find("transformer.h.0.attn.masked_bias") != std::string::npos);
    CHECK(w.find("transformer.h.1.ln_2.bias") != std::string::npos);
  }
}

}  // TEST_SUITE
