#include "nn/llama.h"

#include "ops/attention.h"
#include "ops/elementwise.h"
#include "ops/rope.h"

namespace mg {

namespace {
// [B, T, H*Dh] -> [B, H, T, Dh] (a view).
Tensor split_heads(const Tensor& x, int64_t heads) {
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  return x.view({B, T, heads, D / heads}).transpose(1, 2);
}
// [B, H, T, Dh] -> [B, T, H*Dh].
Tensor merge_heads(const Tensor& x) {
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), Dh = x.size(3);
  return x.transpose(1, 2).reshape({B, T, H * Dh});
}
}  // namespace

LlamaAttention::LlamaAttention(const ModelConfig& c, Generator& gen, TensorOptions opts)
    : heads(c.n_heads),
      rope_theta(c.rope_theta),
      q_proj(c.d_model, c.d_model, false, gen, Init::normal(c.init_std), opts),
      k_proj(c.d_model, c.d_model, false, gen, Init::normal(c.init_std), opts),
      v_proj(c.d_model, c.d_model, false, gen, Init::normal(c.init_std), opts),
      o_proj(c.d_model, c.d_model, false, gen, Init::normal(c.init_std), opts) {
  register_module("q_proj", q_proj);
  register_module("k_proj", k_proj);
  register_module("v_proj", v_proj);
  register_module("o_proj", o_proj);
}

Tensor LlamaAttention::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  Tensor q = rope(split_heads(q_proj.forward(x), heads), rope_theta);
  Tensor k = rope(split_heads(k_proj.forward(x), heads), rope_theta);
  Tensor v = split_heads(v_proj.forward(x), heads);
  return o_proj.forward(merge_heads(scaled_dot_product_attention(q, k, v, true)));
}

LlamaDecoderLayer::LlamaDecoderLayer(const ModelConfig& c, Generator& gen, TensorOptions opts)
    : self_attn(c, gen, opts),
      mlp(c.d_model, c.ffn_mult * c.d_model, gen, Init::normal(c.init_std), opts),
      input_layernorm(c.d_model, c.resolved_norm_eps(), opts),
      post_attention_layernorm(c.d_model, c.resolved_norm_eps(), opts) {
  register_module("self_attn", self_attn);
  register_module("mlp", mlp);
  register_module("input_layernorm", input_layernorm);
  register_module("post_attention_layernorm", post_attention_layernorm);
}

Tensor LlamaDecoderLayer::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  Tensor h = add(x, self_attn.forward(input_layernorm.forward(x)));
  return add(h, mlp.forward(post_attention_layernorm.forward(h)));
}

LlamaBody::LlamaBody(const ModelConfig& c, Generator& gen, TensorOptions opts)
    : embed_tokens(c.vocab_size, c.d_model, gen, Init::normal(c.init_std), opts),
      norm(c.d_model, c.resolved_norm_eps(), opts) {
  register_module("embed_tokens", embed_tokens);
  for (int64_t i = 0; i < c.n_layers; ++i) layers.push_back(std::make_unique<LlamaDecoderLayer>(c, gen, opts));
  register_module("layers", layers);
  register_module("norm", norm);
}

LlamaLM::LlamaLM(const ModelConfig& c, Generator& gen, TensorOptions opts) : LanguageModel(c, ModelKind::llama, "LlamaLM"), model(c, gen, opts) {
  register_module("model", model);
  lm_head = make_tied_or_normal_lm_head(model.embed_tokens.weight, gen, opts);
  register_module("lm_head", *lm_head);
}

Tensor LlamaLM::forward_embeddings(const Tensor& emb, int upto_layer, bool apply_head) {
  ModuleScope scope = forward_scope();
  const int64_t upto = check_embeddings("LlamaLM", emb, upto_layer, false);
  Tensor x = emb;
  for (int64_t i = 0; i < upto; ++i) x = model.layers[size_t(i)].forward(x);
  return apply_head ? lm_head->forward(model.norm.forward(x)) : x;
}

}  // namespace mg
