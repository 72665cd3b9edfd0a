#pragma once
// GPT-1 (docs/paper.md B.2): HF OpenAIGPTLMHeadModel. Learned token and position embeddings, POST-LN
// blocks, tanh-approximation GELU, LayerNorm eps 1e-5, attention scale 1/sqrt(head_dim), init
// N(0, 0.02) with zero biases, lm_head tied to the token embedding (HF default). No dropout
// (the HF default of 0.1 is left out on purpose; see nn/lm.h).
//
//   x = tokens_embed(ids) + positions_embed(0..T-1)
//   per block: x = ln_1(x + attn(x)); x = ln_2(x + mlp(x))
//   logits = x @ tokens_embed^T   (no final norm)
// State-dict names (HF; Conv1D weights are [in, out], y = x W + b):
//   transformer.tokens_embed.weight [V, d], transformer.positions_embed.weight [n, d]
//   transformer.h.N.attn.c_attn.{weight [d, 3d], bias [3d]}, transformer.h.N.attn.c_proj.{weight [d, d], bias [d]}
//   transformer.h.N.ln_1.{weight,bias} [d], transformer.h.N.mlp.c_fc.{weight [d, 4d], bias [4d]},
//   transformer.h.N.mlp.c_proj.{weight [4d, d], bias [d]}, transformer.h.N.ln_2.{weight,bias} [d]
//   lm_head.weight: the same tensor as transformer.tokens_embed.weight (listed once, under the
//   embedding's name, as HF's safetensors files do; loading accepts either name).
// HF's attention also has a causal-mask buffer (transformer.h.N.attn.bias) in some versions'
// state dicts; it is not a parameter here, so load such dicts with strict=false or drop it.
#include "nn/layers.h"
#include "nn/lm.h"

namespace mg {

class GptAttention : public Module {
 public:
  GptAttention(const ModelConfig& config, Generator& gen, TensorOptions opts);
  Tensor forward(const Tensor& x) const;  // [B, T, d] -> [B, T, d], causal

  int64_t heads;
  Conv1D c_attn, c_proj;
};

class GptMLP : public Module {
 public:
  GptMLP(const ModelConfig& config, Generator& gen, TensorOptions opts);
  Tensor forward(const Tensor& x) const;  // c_proj(gelu_tanh(c_fc(x)))

  Conv1D c_fc, c_proj;
};

class GptBlock : public Module {
 public:
  GptBlock(const ModelConfig& config, Generator& gen, TensorOptions opts);
  Tensor forward(const Tensor& x) const;

  GptAttention attn;
  LayerNorm ln_1;
  GptMLP mlp;
  LayerNorm ln_2;
};

// HF's OpenAIGPTModel: the part named "transformer".
class GptBody : public Module {
 public:
  GptBody(const ModelConfig& config, Generator& gen, TensorOptions opts);

  Embedding tokens_embed, positions_embed;
  ModuleList<GptBlock> h;
};

class GptLM : public LanguageModel {
 public:
  GptLM(const ModelConfig& config, Generator& gen, TensorOptions opts = {});
  // Adds the position embeddings of 0..T-1 to emb, then runs the blocks.
  Tensor forward_embeddings(const Tensor& emb, int upto_layer = -1, bool apply_head = true) override;
  const Tensor& token_embedding_weight() const override { return transformer.tokens_embed.weight; }

  GptBody transformer;
  std::unique_ptr<Linear> lm_head;
};

}  // namespace mg
