#pragma once
// Llama-style transformer (docs/paper.md B.1): HF LlamaForCausalLM with hidden_size d,
// intermediate_size ffn_mult*d, h heads (no GQA), RoPE theta 10000, RMSNorm eps 1e-6, no biases,
// init N(0, 0.02) for every Linear and the embedding, norms 1.
//
//   model.embed_tokens -> L x [x += o_proj(SDPA_causal(rope(q), rope(k), v)) of input_layernorm(x);
//                              x += down(silu(gate(y)) * up(y)), y = post_attention_layernorm(x)]
//   -> model.norm -> lm_head (untied unless tie_weights).
// State-dict names (HF): model.embed_tokens.weight [V, d];
//   model.layers.N.self_attn.{q,k,v,o}_proj.weight [d, d];
//   model.layers.N.mlp.{gate,up}_proj.weight [f, d], model.layers.N.mlp.down_proj.weight [d, f];
//   model.layers.N.input_layernorm.weight, model.layers.N.post_attention_layernorm.weight [d];
//   model.norm.weight [d]; lm_head.weight [V, d].
// Positions are 0..T-1 (pads attended, as in the paper: no attention mask). hidden_states(ids, L)
// is the last layer's output before model.norm (the paper's AbbreviatedModel).
#include "nn/layers.h"
#include "nn/lm.h"

namespace mg {

class LlamaAttention : public Module {
 public:
  LlamaAttention(const ModelConfig& config, Generator& gen, TensorOptions opts);
  Tensor forward(const Tensor& x) const;  // [B, T, d] -> [B, T, d]

  int64_t heads;
  double rope_theta;
  Linear q_proj, k_proj, v_proj, o_proj;
};

class LlamaDecoderLayer : public Module {
 public:
  LlamaDecoderLayer(const ModelConfig& config, Generator& gen, TensorOptions opts);
  Tensor forward(const Tensor& x) const;

  LlamaAttention self_attn;
  SwiGLUMLP mlp;
  RMSNorm input_layernorm, post_attention_layernorm;
};

// HF's LlamaModel: the part named "model".
class LlamaBody : public Module {
 public:
  LlamaBody(const ModelConfig& config, Generator& gen, TensorOptions opts);

  Embedding embed_tokens;
  ModuleList<LlamaDecoderLayer> layers;
  RMSNorm norm;
};

class LlamaLM : public LanguageModel {
 public:
  LlamaLM(const ModelConfig& config, Generator& gen, TensorOptions opts = {});
  Tensor forward_embeddings(const Tensor& emb, int upto_layer = -1, bool apply_head = true) override;
  const Tensor& token_embedding_weight() const override { return model.embed_tokens.weight; }
  Tensor final_norm(const Tensor& x) const override { return model.norm.forward(x); }

  LlamaBody model;
  std::unique_ptr<Linear> lm_head;
};

}  // namespace mg
