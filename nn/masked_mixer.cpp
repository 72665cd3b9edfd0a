#include "nn/masked_mixer.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "ops/activation.h"
#include "ops/elementwise.h"
#include "ops/inplace.h"
#include "ops/masked_mix.h"
#include "ops/shape_ops.h"

namespace mg {

// ---- MaskedConv ---------------------------------------------------------------------------

MaskedConv::MaskedConv(int64_t in_len, int64_t out_len, Generator& gen, TensorOptions opts) {
  // Conv1d default init: fan_in = in_channels * kernel_size = in_len.
  const double bound = 1.0 / std::sqrt(double(in_len));
  weight = register_parameter("weight", init_uniform({out_len, in_len, 1}, bound, gen, opts));
  bias = register_parameter("bias", init_uniform({out_len}, bound, gen, opts));
}

Tensor MaskedConv::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  const int64_t out_len = weight.size(0), in_len = weight.size(1);
  MG_CHECK(x.dim() == 3, "MaskedConv: expected [B, T, D], got ", x.desc());
  const int64_t C = x.size(1);
  MG_CHECK(C >= 1 && C <= std::min(out_len, in_len), "MaskedConv: sequence length ", C,
           " exceeds the mixing matrix [", out_len, ", ", in_len, "] (n_ctx)");
  Tensor w = weight.squeeze(2), b = bias;
  if (C != out_len || C != in_len) {
    w = w.narrow(0, 0, C).narrow(1, 0, C);
    b = b.narrow(0, 0, C);
  }
  return masked_token_mix(x, w, b);
}

ExpandedMix::ExpandedMix(int64_t n_ctx, int64_t expansion, Generator& gen, TensorOptions opts)
    : first(n_ctx, expansion * n_ctx, gen, opts), second(expansion * n_ctx, n_ctx, gen, opts) {
  register_module("0", first);
  register_module("2", second);
}

Tensor ExpandedMix::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  return second.forward(gelu(first.forward(x)));
}

// ---- kernel-k ----------------------------------------------------------------------------

Tensor masked_kernel_mix(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  MG_CHECK(x.dim() == 3, "masked_kernel_mix: expected x [B, T, D], got ", x.desc());
  const int64_t B = x.size(0), T = x.size(1), D = x.size(2);
  MG_CHECK(weight.dim() == 3 && weight.size(0) == T && weight.size(1) == T && weight.size(2) >= 1,
           "masked_kernel_mix: expected weight [", T, ", ", T, ", k], got ", weight.desc());
  MG_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == T), "masked_kernel_mix: expected bias [", T,
           "], got ", bias.desc());
  const int64_t k = weight.size(2), left = (k - 1) / 2, right = k - 1 - left;
  // One zero-padded copy [B, T, left + D + right]; tap t reads its columns [t, t + D), i.e.
  // x[..., f + t - left] for output feature f.
  Tensor padded = x;
  if (k > 1) {
    std::vector<Tensor> parts;
    if (left > 0) parts.push_back(zeros({B, T, left}, TensorOptions{x.dtype(), x.device()}));
    parts.push_back(x);
    if (right > 0) parts.push_back(zeros({B, T, right}, TensorOptions{x.dtype(), x.device()}));
    padded = cat(parts, 2);
  }
  Tensor y;
  for (int64_t t = 0; t < k; ++t) {
    Tensor tap = masked_token_mix(padded.narrow(2, t, D), weight.select(2, t), t == 0 ? bias : Tensor());
    y = t == 0 ? tap : add(y, tap);
  }
  return y;
}

MaskedKernelConv::MaskedKernelConv(int64_t n_ctx, int64_t kernel, Generator& gen, TensorOptions opts) {
  const double bound = 1.0 / std::sqrt(double(n_ctx * kernel));
  weight = register_parameter("weight", init_uniform({n_ctx, n_ctx, kernel}, bound, gen, opts));
  bias = register_parameter("bias", init_uniform({n_ctx}, bound, gen, opts));
}

Tensor MaskedKernelConv::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  const int64_t n = weight.size(0);
  MG_CHECK(x.dim() == 3 && x.size(1) >= 1 && x.size(1) <= n, "MaskedKernelConv: expected [B, T, D] with 1 <= T <= ",
           n, " (n_ctx), got ", x.desc());
  const int64_t T = x.size(1);
  Tensor w = weight, b = bias;
  if (T != n) {
    w = w.narrow(0, 0, T).narrow(1, 0, T);
    b = b.narrow(0, 0, T);
  }
  return masked_kernel_mix(x, w, b);
}

// ---- multi-head ---------------------------------------------------------------------------

MaskedConvHeads::MaskedConvHeads(int64_t heads, int64_t n_ctx, Generator& gen, TensorOptions opts) {
  const double bound = 1.0 / std::sqrt(double(n_ctx));
  weight = register_parameter("weight", init_uniform({heads, n_ctx, n_ctx}, bound, gen, opts));
  bias = register_parameter("bias", init_uniform({heads, n_ctx}, bound, gen, opts));
}

// Each head's Linear(d, d/H) has fan_in d, so one Linear(d, d) draws from the same distribution.
MixerHeads::MixerHeads(int64_t d_model, int64_t n_ctx, int64_t n_heads, Generator& gen, TensorOptions opts)
    : proj_head(d_model, d_model, true, gen, Init::torch_default(), opts),
      convs(n_heads, n_ctx, gen, opts),
      out_proj(d_model, d_model, true, gen, Init::torch_default(), opts) {
  register_module("proj_head", proj_head);
  register_module("convs", convs);
  register_module("out_proj", out_proj);
}

Tensor MixerHeads::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  const int64_t n = convs.weight.size(1);
  MG_CHECK(x.dim() == 3 && x.size(1) >= 1 && x.size(1) <= n, "MixerHeads: expected [B, T, D] with 1 <= T <= ", n,
           ", got ", x.desc());
  const int64_t T = x.size(1);
  Tensor projected = proj_head.forward(x), mixed;
  {
    // convs has no forward of its own; its ops still belong under its name.
    ModuleScope in_convs = convs.forward_scope();
    Tensor w = convs.weight, b = convs.bias;
    if (T != n) {
      w = w.narrow(1, 0, T).narrow(2, 0, T);
      b = b.narrow(1, 0, T);
    }
    mixed = masked_token_mix_heads(projected, w, b);
  }
  return out_proj.forward(mixed);
}

// ---- block and model ----------------------------------------------------------------------

MixerBlock::MixerBlock(const ModelConfig& c, Generator& gen, TensorOptions opts)
    : patch_layernorm(c.d_model, c.resolved_norm_eps(), opts),
      seq_layernorm(c.d_model, c.resolved_norm_eps(), opts),
      patch_ff(c.d_model, c.ffn_mult * c.d_model, gen, Init::torch_default(), opts) {
  register_module("patch_layernorm", patch_layernorm);
  register_module("seq_layernorm", seq_layernorm);
  register_module("patch_ff", patch_ff);
  switch (c.mixer_form) {
    case MixerForm::flat:
      flat = std::make_unique<MaskedConv>(c.n_ctx, c.n_ctx, gen, opts);
      register_module("conv", *flat);
      break;
    case MixerForm::expanded:
      expanded = std::make_unique<ExpandedMix>(c.n_ctx, c.mixer_expansion, gen, opts);
      register_module("conv", *expanded);
      break;
    case MixerForm::multihead:
      heads = std::make_unique<MixerHeads>(c.d_model, c.n_ctx, c.mixer_heads, gen, opts);
      register_module("conv", *heads);
      break;
    case MixerForm::kernel:
      kernel = std::make_unique<MaskedKernelConv>(c.n_ctx, c.mixer_kernel, gen, opts);
      register_module("conv", *kernel);
      break;
  }
}

Tensor MixerBlock::token_mix(const Tensor& h) const {
  if (flat) return flat->forward(h);
  if (expanded) return expanded->forward(h);
  if (kernel) return kernel->forward(h);
  return heads->forward(h);
}

Tensor MixerBlock::forward(const Tensor& x) const {
  ModuleScope scope = forward_scope();
  Tensor y = add(x, token_mix(seq_layernorm.forward(x)));
  return add(y, patch_ff.forward(patch_layernorm.forward(y)));
}

MaskedMixerLM::MaskedMixerLM(const ModelConfig& c, Generator& gen, TensorOptions opts)
    : LanguageModel(c, ModelKind::masked_mixer, "MaskedMixerLM"), wte(c.vocab_size, c.d_model, gen, Init::torch_default(), opts) {
  register_module("wte", wte);
  for (int64_t i = 0; i < c.n_layers; ++i) mixerblocks.push_back(std::make_unique<MixerBlock>(c, gen, opts));
  register_module("mixerblocks", mixerblocks);
  if (c.resolved_tie_weights()) {
    // The paper's code ties by `wte.weight = lm_head.weight`: the shared tensor starts as the
    // Linear's U(-1/sqrt(d), 1/sqrt(d)), not the Embedding's N(0, 1).
    NoGradGuard no_grad;
    assign_(wte.weight, init_uniform(wte.weight.shape(), 1.0 / std::sqrt(double(c.d_model)), gen, opts));
    lm_head = std::make_unique<Linear>(wte.weight);
  } else {
    lm_head = std::make_unique<Linear>(c.d_model, c.vocab_size, false, gen, Init::torch_default(), opts);
  }
  register_module("lm_head", *lm_head);
}

Tensor MaskedMixerLM::forward_embeddings(const Tensor& emb, int upto_layer, bool apply_head) {
  ModuleScope scope = forward_scope();
  const int64_t upto = check_embeddings("MaskedMixerLM", emb, upto_layer, true);
  Tensor x = emb;
  for (int64_t i = 0; i < upto; ++i) x = mixerblocks[size_t(i)].forward(x);
  return apply_head ? lm_head->forward(x) : x;
}

}  // namespace mg
