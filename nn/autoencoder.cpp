#include "nn/autoencoder.h"

#include "ops/embedding.h"
#include "ops/softmax.h"

namespace mg {

namespace {
ModelConfig checked_config(ModelConfig c, ModelKind expected, const char* name) {
  MG_CHECK(c.kind == expected, name, ": the config is for a ", model_kind_name(c.kind), " model");
  MG_CHECK(!c.resolved_tie_weights(), name, ": tie_weights is not supported by the autoencoders");
  c.validate();
  return c;
}
}  // namespace

// ---- base -----------------------------------------------------------------------------------

Autoencoder::Autoencoder(ModelConfig config, ModelKind expected, const char* name, Generator& gen, TensorOptions opts)
    : config_(checked_config(std::move(config), expected, name)),
      name_(name),
      wte(config_.vocab_size, config_.d_model, gen, Init::torch_default(), opts) {
  register_module("wte", wte);
}

void Autoencoder::add_head(Generator& gen, TensorOptions opts) {
  lm_head = std::make_unique<Linear>(config_.d_model, config_.vocab_size, false, gen, Init::torch_default(), opts);
  register_module("lm_head", *lm_head);
}

Tensor Autoencoder::encoder_states(const Tensor& ids) const {
  ModuleScope scope = forward_scope();
  MG_CHECK(ids.defined() && ids.dtype() == DType::i32 && ids.dim() == 2, name_, ": ids must be i32 [B, T], got ",
           ids.defined() ? ids.desc() : std::string("an undefined tensor"));
  MG_CHECK(ids.size(1) >= 1 && ids.size(1) <= config_.n_ctx, name_, ": sequence length ", ids.size(1),
           " outside [1, n_ctx = ", config_.n_ctx, "]");
  return run_encoder(embedding(wte.weight, ids.to(wte.weight.device())));
}

Tensor Autoencoder::encode(const Tensor& ids) const {
  ModuleScope scope = forward_scope();
  Tensor h = encoder_states(ids);
  return h.select(1, h.size(1) - 1);
}

Tensor Autoencoder::decode(const Tensor& z, int64_t T) const {
  ModuleScope scope = forward_scope();
  MG_CHECK(z.defined() && z.dim() == 2 && z.size(1) == config_.d_model, name_, ": z must be [B, ", config_.d_model,
           "], got ", z.defined() ? z.desc() : std::string("an undefined tensor"));
  MG_CHECK(z.dtype() == wte.weight.dtype() && z.device() == wte.weight.device(), name_, ": z ", z.desc(),
           " does not match the model's parameters ", wte.weight.desc());
  MG_CHECK(T >= 1 && T <= config_.n_ctx, name_, ": decode length ", T, " outside [1, n_ctx = ", config_.n_ctx, "]");
  // The repeat is a stride-0 view; its backward sums the positions' gradients into z.
  Tensor x = z.unsqueeze(1).expand({z.size(0), T, z.size(1)});
  return lm_head->forward(run_decoder(x));
}

// ---- mixer ----------------------------------------------------------------------------------

MixerAutoencoder::MixerAutoencoder(const ModelConfig& c, Generator& gen, TensorOptions opts)
    : Autoencoder(c, ModelKind::masked_mixer, "MixerAutoencoder", gen, opts) {
  for (int64_t i = 0; i < c.n_layers; ++i) encoderblocks.push_back(std::make_unique<MixerBlock>(c, gen, opts));
  register_module("encoderblocks", encoderblocks);
  for (int64_t i = 0; i < c.n_layers; ++i) decoderblocks.push_back(std::make_unique<MixerBlock>(c, gen, opts));
  register_module("decoderblocks", decoderblocks);
  add_head(gen, opts);
}

Tensor MixerAutoencoder::run_encoder(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  Tensor h = x;
  for (const auto& b : encoderblocks) h = b->forward(h);
  return h;
}

Tensor MixerAutoencoder::run_decoder(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  Tensor h = x;
  for (const auto& b : decoderblocks) h = b->forward(h);
  return h;
}

// ---- transformer ----------------------------------------------------------------------------

AbbreviatedLlama::Body::Body(const ModelConfig& c, Generator& gen, TensorOptions opts) {
  for (int64_t i = 0; i < c.n_layers; ++i) layers.push_back(std::make_unique<LlamaDecoderLayer>(c, gen, opts));
  register_module("layers", layers);
}

AbbreviatedLlama::CausalLM::CausalLM(const ModelConfig& c, Generator& gen, TensorOptions opts) : model(c, gen, opts) {
  register_module("model", model);
}

AbbreviatedLlama::AbbreviatedLlama(const ModelConfig& c, Generator& gen, TensorOptions opts) : model(c, gen, opts) {
  register_module("model", model);
}

Tensor AbbreviatedLlama::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  Tensor h = x;
  for (const auto& layer : model.model.layers) h = layer->forward(h);
  return h;
}

TransformerAutoencoder::TransformerAutoencoder(const ModelConfig& c, Generator& gen, TensorOptions opts)
    : Autoencoder(c, ModelKind::llama, "TransformerAutoencoder", gen, opts), encoder(c, gen, opts), decoder(c, gen, opts) {
  register_module("encoder", encoder);
  register_module("decoder", decoder);
  add_head(gen, opts);
}

// ---- factory and loss -----------------------------------------------------------------------

std::unique_ptr<Autoencoder> make_autoencoder(const ModelConfig& config, Generator& gen, TensorOptions opts) {
  opts.requires_grad = false;
  MG_CHECK(opts.dtype == DType::f32 || opts.dtype == DType::f64,
           "make_autoencoder: parameters must be f32 or f64, got ", dtype_name(opts.dtype));
  switch (config.kind) {
    case ModelKind::masked_mixer: return std::make_unique<MixerAutoencoder>(config, gen, opts);
    case ModelKind::llama: return std::make_unique<TransformerAutoencoder>(config, gen, opts);
    case ModelKind::gpt: break;
  }
  throw Error(std::string("make_autoencoder: no autoencoder for model kind '") + model_kind_name(config.kind) +
              "' (masked_mixer or llama)");
}

int64_t autoencoder_num_parameters(const ModelConfig& config) {
  // An LM of the same config holds wte, L blocks and lm_head (plus Llama's final norm, which
  // the autoencoder lacks); the autoencoder holds 2L blocks.
  ModelConfig one = config;
  one.tie_weights = false;
  const int64_t V = config.vocab_size, d = config.d_model;
  const int64_t lm = one.expected_num_parameters();
  const int64_t blocks = lm - 2 * V * d - (config.kind == ModelKind::llama ? d : 0);
  return 2 * V * d + 2 * blocks;
}

Tensor reconstruction_loss(const Tensor& logits, const Tensor& labels, int64_t ignore_index, Reduction reduction) {
  MG_CHECK(logits.defined() && labels.defined(), "reconstruction_loss: undefined input");
  MG_CHECK(logits.dim() == 3 && labels.dim() == 2 && labels.dtype() == DType::i32 &&
               logits.size(0) == labels.size(0) && logits.size(1) == labels.size(1),
           "reconstruction_loss: expected logits [B, T, V] and labels i32 [B, T], got ", logits.desc(), " and ",
           labels.desc());
  return cross_entropy(logits, labels.to(logits.device()), ignore_index, reduction);
}

}  // namespace mg
