#include "nn/gpt.h"

#include "ops/activation.h"
#include "ops/attention.h"
#include "ops/elementwise.h"

namespace mg {

namespace {
Tensor split_heads(const Tensor& x, int64_t heads) {  // [B, T, H*Dh] -> [B, H, T, Dh] (a view)
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  return x.view({B, T, heads, D / heads}).transpose(1, 2);
}
Tensor merge_heads(const Tensor& x) {  // [B, H, T, Dh] -> [B, T, H*Dh]
  const int64_t B = x.size(0), H = x.size(1), T = x.size(2), Dh = x.size(3);
  return x.transpose(1, 2).reshape({B, T, H * Dh});
}
}  // namespace

GptAttention::GptAttention(const ModelConfig& c, Generator& gen, TensorOptions opts)
    : heads(c.n_heads),
      c_attn(c.d_model, 3 * c.d_model, gen, Init::normal(c.init_std), opts),
      c_proj(c.d_model, c.d_model, gen, Init::normal(c.init_std), opts) {
  register_module("c_attn", c_attn);
  register_module("c_proj", c_proj);
}

Tensor GptAttention::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  const int64_t d = x.size(2);
  Tensor qkv = c_attn.forward(x);  // [B, T, 3d]: q, k, v side by side
  Tensor q = split_heads(qkv.narrow(2, 0, d), heads);
  Tensor k = split_heads(qkv.narrow(2, d, d), heads);
  Tensor v = split_heads(qkv.narrow(2, 2 * d, d), heads);
  return c_proj.forward(merge_heads(scaled_dot_product_attention(q, k, v, true)));
}

GptMLP::GptMLP(const ModelConfig& c, Generator& gen, TensorOptions opts)
    : c_fc(c.d_model, c.ffn_mult * c.d_model, gen, Init::normal(c.init_std), opts),
      c_proj(c.ffn_mult * c.d_model, c.d_model, gen, Init::normal(c.init_std), opts) {
  register_module("c_fc", c_fc);
  register_module("c_proj", c_proj);
}

Tensor GptMLP::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  return c_proj.forward(bias_gelu(c_fc.forward_no_bias(x), c_fc.bias, true));  // bias fused into the GELU
}

GptBlock::GptBlock(const ModelConfig& c, Generator& gen, TensorOptions opts)
    : attn(c, gen, opts),
      ln_1(c.d_model, c.resolved_norm_eps(), opts),
      mlp(c, gen, opts),
      ln_2(c.d_model, c.resolved_norm_eps(), opts) {
  register_module("attn", attn);
  register_module("ln_1", ln_1);
  register_module("mlp", mlp);
  register_module("ln_2", ln_2);
}

Tensor GptBlock::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  Tensor n = ln_1.forward(add(x, attn.forward(x)));
  return ln_2.forward(add(n, mlp.forward(n)));
}

GptBody::GptBody(const ModelConfig& c, Generator& gen, TensorOptions opts)
    : tokens_embed(c.vocab_size, c.d_model, gen, Init::normal(c.init_std), opts),
      positions_embed(c.n_ctx, c.d_model, gen, Init::normal(c.init_std), opts) {
  register_module("tokens_embed", tokens_embed);
  register_module("positions_embed", positions_embed);
  for (int64_t i = 0; i < c.n_layers; ++i) h.push_back(std::make_unique<GptBlock>(c, gen, opts));
  register_module("h", h);
}

GptLM::GptLM(const ModelConfig& c, Generator& gen, TensorOptions opts)
    : LanguageModel(c, ModelKind::gpt, "GptLM"), transformer(c, gen, opts) {
  register_module("transformer", transformer);
  lm_head = make_tied_or_normal_lm_head(transformer.tokens_embed.weight, gen, opts);
  register_module("lm_head", *lm_head);
}

Tensor GptLM::forward_embeddings(const Tensor& emb, int upto_layer, bool apply_head) {
  ModuleScope scope = forward_scope();
  const int64_t upto = check_embeddings("GptLM", emb, upto_layer, true);
  const int64_t T = emb.size(1);
  // positions_embed rows 0..T-1 broadcast over the batch.
  Tensor x = add(emb, transformer.positions_embed.weight.narrow(0, 0, T));
  for (int64_t i = 0; i < upto; ++i) x = transformer.h[size_t(i)].forward(x);
  return apply_head ? lm_head->forward(x) : x;
}

}  // namespace mg
