#include "nn/lm.h"

#include "nn/gpt.h"
#include "nn/llama.h"
#include "nn/masked_mixer.h"
#include "ops/embedding.h"
#include "ops/softmax.h"

namespace mg {

LanguageModel::LanguageModel(ModelConfig config, ModelKind expected, const char* name) : config_(std::move(config)) {
  MG_CHECK(config_.kind == expected, name, ": the config is for a ", model_kind_name(config_.kind), " model");
  config_.validate();
}

std::unique_ptr<Linear> LanguageModel::make_tied_or_normal_lm_head(const Tensor& embedding, Generator& gen,
                                                                   TensorOptions opts) const {
  if (config_.resolved_tie_weights()) return std::make_unique<Linear>(embedding);
  return std::make_unique<Linear>(config_.d_model, config_.vocab_size, false, gen, Init::normal(config_.init_std), opts);
}

Tensor LanguageModel::embed(const Tensor& ids) const {
  MG_CHECK(ids.defined() && ids.dtype() == DType::i32 && ids.dim() == 2, "LanguageModel: ids must be i32 [B, T], got ",
           ids.defined() ? ids.desc() : std::string("an undefined tensor"));
  // The lookup runs under the embedding module's name ("wte", "model.embed_tokens"), found once.
  if (!embed_path_) {
    embed_path_ = std::string();
    for (const auto& [name, p] : named_parameters())
      if (p.impl() == token_embedding_weight().impl()) {
        embed_path_ = name.substr(0, name.rfind('.'));
        break;
      }
  }
  ModuleScope scope(ModuleScope::Absolute{*embed_path_});
  return embedding(token_embedding_weight(), ids);
}

int64_t LanguageModel::check_embeddings(const char* name, const Tensor& emb, int upto_layer, bool limit_to_ctx) const {
  MG_CHECK(emb.defined() && emb.dim() == 3 && emb.size(2) == config_.d_model, name,
           ": embeddings must be [B, T, ", config_.d_model, "], got ",
           emb.defined() ? emb.desc() : std::string("an undefined tensor"));
  MG_CHECK(emb.size(1) >= 1, name, ": empty sequence ", emb.desc());
  MG_CHECK(!limit_to_ctx || emb.size(1) <= config_.n_ctx, name, ": sequence length ", emb.size(1),
           " exceeds n_ctx = ", config_.n_ctx);
  const Tensor& w = token_embedding_weight();
  MG_CHECK(emb.dtype() == w.dtype() && emb.device() == w.device(), name, ": embeddings ", emb.desc(),
           " do not match the model's parameters ", w.desc());
  MG_CHECK(upto_layer >= -1 && upto_layer <= config_.n_layers, name, ": layer ", upto_layer,
           " out of range (0..", config_.n_layers, ", or -1 for all)");
  return upto_layer < 0 ? config_.n_layers : upto_layer;
}

std::unique_ptr<LanguageModel> make_model(const ModelConfig& config, Generator& gen, TensorOptions opts) {
  config.validate();
  opts.requires_grad = false;
  MG_CHECK(opts.dtype == DType::f32 || opts.dtype == DType::f64, "make_model: parameters must be f32 or f64, got ",
           dtype_name(opts.dtype));
  switch (config.kind) {
    case ModelKind::masked_mixer: return std::make_unique<MaskedMixerLM>(config, gen, opts);
    case ModelKind::llama: return std::make_unique<LlamaLM>(config, gen, opts);
    case ModelKind::gpt: return std::make_unique<GptLM>(config, gen, opts);
  }
  throw Error("make_model: unknown model kind");
}

Tensor lm_loss(const Tensor& logits, const Tensor& ids, int32_t pad_id) {
  MG_CHECK(logits.defined() && ids.defined(), "lm_loss: undefined input");
  MG_CHECK(logits.dim() == 3 && ids.dim() == 2 && ids.dtype() == DType::i32 && logits.size(0) == ids.size(0) &&
               logits.size(1) == ids.size(1),
           "lm_loss: expected logits [B, T, V] and ids i32 [B, T], got ", logits.desc(), " and ", ids.desc());
  const int64_t B = ids.size(0), T = ids.size(1);
  MG_CHECK(T >= 2, "lm_loss: need at least 2 positions to shift, got T = ", T);
  // Ignoring targets equal to pad_id is the same as HF's labels-with--100 at pad positions.
  const int32_t ignore = pad_id >= 0 ? pad_id : -100;
  // Targets shifted left by one, the last position ignored: the same loss as CE(logits[:, :-1],
  // ids[:, 1:]) without slicing the logits, which would copy [B, T-1, V] forward and scatter a
  // [B, T, V] gradient back. The ids are small, so the shift is done on the host.
  std::vector<int32_t> v = ids.to_vector<int32_t>(), shifted(v.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) shifted[size_t(b * T + t)] = t + 1 < T ? v[size_t(b * T + t + 1)] : ignore;
  Tensor targets = from_vector(shifted, Shape{B, T}, TensorOptions{DType::i32, logits.device()});
  return cross_entropy(logits, targets, ignore, Reduction::mean);
}

}  // namespace mg
