#pragma once
// The common interface of the paper's language models (masked mixer, Llama, GPT-1), the factory
// that builds one from a ModelConfig, and the shifted causal-LM loss (docs/paper.md A.8).
//
// Every model maps token ids [B, T] (i32, 1 <= T <= n_ctx for the mixer and GPT) to logits
// [B, T, V]; logits at position t depend on ids[:, :t+1] only. Models run in f32 for training and
// f64 for gradchecks (make_model's opts, or Module::to). None uses dropout: the project runs
// every model without it (docs/paper.md A.1: the paper's mixers have none; the HF GPT default of 0.1
// is deliberately not reproduced, so the three families compare without regularisation).
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "core/factories.h"
#include "nn/layers.h"
#include "nn/model_config.h"
#include "nn/module.h"

namespace mg {

class LanguageModel : public Module {
 public:
  const ModelConfig& config() const { return config_; }

  // ids [B, T] i32 -> logits [B, T, V].
  Tensor forward(const Tensor& ids) { return forward_embeddings(embed(ids)); }
  // The token embeddings of ids: [B, T, D] (rows of token_embedding_weight(); no positions).
  Tensor embed(const Tensor& ids) const;
  // Activations after the first `layer` blocks (0 = the input of the first block, L = the
  // output of the last block, before any final norm): [B, T, D].
  Tensor hidden_states(const Tensor& ids, int layer) { return forward_embeddings(embed(ids), layer, false); }
  // Runs the model from token embeddings emb [B, T, D] (what embed() returns; a model with
  // learned positions adds them here) through the first `upto_layer` blocks (-1 = all); with
  // apply_head, the final norm (where the model has one) and lm_head follow, giving logits
  // [B, T, V], else the activations [B, T, D]. Differentiable w.r.t. emb (input representation).
  virtual Tensor forward_embeddings(const Tensor& emb, int upto_layer = -1, bool apply_head = true) = 0;
  // The token embedding matrix [V, D] (wte / embed_tokens / tokens_embed).
  virtual const Tensor& token_embedding_weight() const = 0;
  // The model's final norm applied to last-block activations [B, T, D]: Llama's RMSNorm
  // (HF's last hidden state, the paper's Llama embeddings, docs/paper.md E.2); x itself for the
  // mixer and GPT-1, which have none. Differentiable.
  virtual Tensor final_norm(const Tensor& x) const { return x; }
  int64_t num_layers() const { return config_.n_layers; }

 protected:
  // Validates the config (and that it is of kind `expected`) before any member is built.
  LanguageModel(ModelConfig config, ModelKind expected, const char* name);
  // Checks emb against the config and resolves upto_layer (-1 -> L); `name` is the model's.
  int64_t check_embeddings(const char* name, const Tensor& emb, int upto_layer, bool limit_to_ctx) const;
  // The bias-free output projection [V, D] of the Hugging Face families (llama, gpt): the token
  // embedding matrix itself when the config ties weights, else fresh weights N(0, init_std)
  // drawn from gen.
  std::unique_ptr<Linear> make_tied_or_normal_lm_head(const Tensor& embedding, Generator& gen,
                                                      TensorOptions opts) const;

  ModelConfig config_;

 private:
  mutable std::optional<std::string> embed_path_;  // state-dict prefix of the token embedding
};

// Builds the model the config describes (config.validate() first), parameters drawn from gen in
// registration order (see nn/init.h) and placed per opts (dtype f32/f64, device).
std::unique_ptr<LanguageModel> make_model(const ModelConfig& config, Generator& gen, TensorOptions opts = {});

// The causal-LM loss: mean cross-entropy of logits[:, :-1] against ids[:, 1:], where target
// positions holding pad_id are ignored (labels = ids with pads set to -100, as HF's collator;
// pass pad_id < 0 to score every position). logits [B, T, V], ids [B, T] i32, T >= 2.
Tensor lm_loss(const Tensor& logits, const Tensor& ids, int32_t pad_id);

}  // namespace mg
