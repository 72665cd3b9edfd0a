#include "nn/autoencoder_encoder.h"

#include <string_view>

#include "core/factories.h"

namespace mg {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// The language-model name of autoencoder parameter `name`, or "" for a decoder parameter.
std::string lm_name(const std::string& name, ModelKind kind) {
  const bool mixer = kind == ModelKind::masked_mixer;
  const std::string encoder = mixer ? "encoderblocks." : "encoder.model.model.layers.";
  const std::string decoder = mixer ? "decoderblocks." : "decoder.";
  if (name == "wte.weight") return mixer ? "wte.weight" : "model.embed_tokens.weight";
  if (name == "lm_head.weight") return "lm_head.weight";
  if (starts_with(name, encoder)) return (mixer ? "mixerblocks." : "model.layers.") + name.substr(encoder.size());
  if (starts_with(name, decoder)) return "";
  throw Error("encoder_lm_state_dict: autoencoder parameter '" + name + "' has no language-model name");
}

}  // namespace

StateDict encoder_lm_state_dict(const Autoencoder& ae) {
  const ModelKind kind = ae.config().kind;
  MG_CHECK(kind == ModelKind::masked_mixer || kind == ModelKind::llama,
           "encoder_lm_state_dict: no language model for an autoencoder of kind ", model_kind_name(kind));
  StateDict out;
  for (auto& [name, t] : ae.state_dict()) {
    std::string n = lm_name(name, kind);
    if (!n.empty()) out.emplace_back(std::move(n), t);
  }
  // Llama's final norm, which the encoder lacks: ones leave each vector's direction as it is.
  if (kind == ModelKind::llama) {
    const Tensor& w = ae.wte.weight;
    out.emplace_back("model.norm.weight", ones({ae.config().d_model}, TensorOptions{w.dtype(), w.device(), false}));
  }
  return out;
}

std::unique_ptr<LanguageModel> encoder_language_model(const Autoencoder& ae) {
  const Tensor& w = ae.wte.weight;
  Generator gen(0);
  std::unique_ptr<LanguageModel> lm = make_model(ae.config(), gen, TensorOptions{w.dtype(), w.device(), false});
  lm->load_state_dict(encoder_lm_state_dict(ae), true);
  return lm;
}

}  // namespace mg
