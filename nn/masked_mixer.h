#pragma once
// The masked mixer language model (docs/paper.md A.1, A.3, A.5, A.8, A.10).
//
//   wte Embedding(V, d) -> L MixerBlocks -> lm_head Linear(d, V, bias=False); no final norm, no
//   positional encoding (position lives in the position-indexed mixing matrices).
//   MixerBlock: X += TokenMix(seq_layernorm(X)); X += patch_ff(patch_layernorm(X)).
//
// State-dict names follow the paper's PyTorch code (LanguageMixer, mixer_trainer.py):
//   wte.weight [V, d]
//   mixerblocks.N.seq_layernorm.{weight,bias} [d]   mixerblocks.N.patch_layernorm.{weight,bias} [d]
//   mixerblocks.N.patch_ff.0.{weight [4d, d], bias [4d]}   mixerblocks.N.patch_ff.2.{weight [d, 4d], bias [d]}
//   flat:      mixerblocks.N.conv.weight [n, n, 1], mixerblocks.N.conv.bias [n]
//   expanded:  mixerblocks.N.conv.0.{weight [e*n, n, 1], bias [e*n]}, mixerblocks.N.conv.2.{weight [n, e*n, 1], bias [n]}
//   multihead: mixerblocks.N.conv.proj_head.{weight [d, d], bias [d]}     (all H heads' Linear(d, d/H) stacked:
//                                                                        head h = rows [h*d/H, (h+1)*d/H))
//              mixerblocks.N.conv.convs.{weight [H, n, n], bias [H, n]}   (head h = PyTorch convs.h.weight[:, :, 0])
//              mixerblocks.N.conv.out_proj.{weight [d, d], bias [d]}
//   kernel:    mixerblocks.N.conv.weight [n, n, k], mixerblocks.N.conv.bias [n]   (PyTorch's
//              Conv1d(n, n, k, padding='same') with the tokens as channels)
//   lm_head.weight [V, d] (absent with tie_weights: then wte.weight serves both)
// The conv weights keep PyTorch's Conv1d shape [out, in, 1] so weights load both ways; the op
// uses a [out, in] view.
//
// Causal masking: the stored weights are initialised over the FULL matrix (PyTorch's default
// U(-1/sqrt(n), 1/sqrt(n)) on every entry) and never rewritten; masked_token_mix ignores the
// upper triangle in forward and gives it an exactly zero gradient, so those entries keep their
// initial values forever and influence nothing. (The paper's code zeroes them in place before
// each forward instead; a checkpoint written by it has zeros there, one from us has the initial
// values; both give identical outputs.)
//
// Sequences shorter than n are allowed: T <= n uses the top-left [T, T] block of each mixing
// matrix (and the first T biases), which is exactly the model run on the sequence padded on
// the right to n, at positions < T (nothing at a later position reaches an earlier one).
#include "nn/layers.h"
#include "nn/lm.h"

namespace mg {

// One masked token-mixing matrix: PyTorch's Conv1d(in_len, out_len, 1), lower triangle only.
class MaskedConv : public Module {
 public:
  MaskedConv(int64_t in_len, int64_t out_len, Generator& gen, TensorOptions opts);
  // x [B, C, D], C <= min(in_len, out_len) -> [B, C, D] through the top-left [C, C] block.
  // Rows r >= C of the full matrix only feed positions >= C (or, in the expanded form, hidden
  // units no output reads), so dropping them changes neither outputs nor gradients.
  Tensor forward(const Tensor& x) const;

  Tensor weight, bias;  // [out_len, in_len, 1], [out_len]
};

// The expanded form (A.3): "0" MaskedConv(n -> e*n), GELU ("1", no parameters), "2" MaskedConv(e*n -> n).
// Hidden unit r sees tokens <= r and output i reads hidden units <= i < n, so the (e-1)*n extra
// hidden units never reach an output: the forward computes only the first n (see MaskedConv).
class ExpandedMix : public Module {
 public:
  ExpandedMix(int64_t n_ctx, int64_t expansion, Generator& gen, TensorOptions opts);
  Tensor forward(const Tensor& x) const;

  MaskedConv first, second;
};

// Kernel-k token mixing (docs/paper.md A.4, the "fully convolutional" mixer): PyTorch's
// Conv1d(n, n, k, padding='same') over x [B, n, d] with the tokens as channels, so the kernel
// slides along the FEATURE axis, each of its k taps masked with tril over (output, input token):
//   y[b, i, f] = sum_{j <= i} sum_{t < k} W[i, j, t] x[b, j, f + t - p] + c[i],   p = (k - 1) / 2
// with zeros outside [0, d) (torch's 'same': p on the left, k - 1 - p on the right; k = 4 pads
// 1 and 2). weight [T, T, k] (any layout), bias [T] or undefined; x [B, T, D]; -> [B, T, D].
// Composed of k masked_token_mix calls on shifted views of one zero-padded copy of x, so every
// tap gets the op's masking guarantees (upper triangle ignored, its gradient exactly 0).
Tensor masked_kernel_mix(const Tensor& x, const Tensor& weight, const Tensor& bias);

// The kernel form's module: weight [n, n, k] and bias [n] with Conv1d's default init
// (fan_in = n k), registered directly under "conv" like the flat form.
class MaskedKernelConv : public Module {
 public:
  MaskedKernelConv(int64_t n_ctx, int64_t kernel, Generator& gen, TensorOptions opts);
  // x [B, T, D] with T <= n_ctx: the top-left [T, T] block of every tap (as MaskedConv).
  Tensor forward(const Tensor& x) const;

  Tensor weight, bias;  // [n, n, k], [n]
};

// H masked [n, n] matrices (weight [H, n, n], bias [H, n]), registered under "convs".
class MaskedConvHeads : public Module {
 public:
  MaskedConvHeads(int64_t heads, int64_t n_ctx, Generator& gen, TensorOptions opts);
  Tensor weight, bias;
};

// Multi-head token mixing (A.5, clean semantics): per head h, P_h = Linear(d, d/H)(x) (all heads
// as one Linear(d, d)), Z_h = tril(W_h) P_h + c_h, out = out_proj(concat_h Z_h).
class MixerHeads : public Module {
 public:
  MixerHeads(int64_t d_model, int64_t n_ctx, int64_t heads, Generator& gen, TensorOptions opts);
  Tensor forward(const Tensor& x) const;  // [B, T, d] -> [B, T, d]

  Linear proj_head;
  MaskedConvHeads convs;
  Linear out_proj;
};

class MixerBlock : public Module {
 public:
  MixerBlock(const ModelConfig& config, Generator& gen, TensorOptions opts);
  Tensor forward(const Tensor& x) const;  // [B, T, d] -> [B, T, d]
  Tensor token_mix(const Tensor& h) const;

  LayerNorm patch_layernorm, seq_layernorm;  // PyTorch registration order
  FeedForward patch_ff;
  // The token mixing, registered as "conv": exactly one is set, per config.mixer_form.
  std::unique_ptr<MaskedConv> flat;
  std::unique_ptr<ExpandedMix> expanded;
  std::unique_ptr<MixerHeads> heads;
  std::unique_ptr<MaskedKernelConv> kernel;
};

class MaskedMixerLM : public LanguageModel {
 public:
  MaskedMixerLM(const ModelConfig& config, Generator& gen, TensorOptions opts = {});
  Tensor forward_embeddings(const Tensor& emb, int upto_layer = -1, bool apply_head = true) override;
  const Tensor& token_embedding_weight() const override { return wte.weight; }

  Embedding wte;
  ModuleList<MixerBlock> mixerblocks;
  std::unique_ptr<Linear> lm_head;
};

}  // namespace mg
