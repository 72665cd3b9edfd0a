#pragma once
// The basic layers, with PyTorch's parameter names and layouts so state dicts match:
//   Linear       weight [out, in], bias [out];       y = x W^T + b
//   Conv1D       weight [in, out], bias [out];       y = x W + b   (Hugging Face's GPT "Conv1D")
//   Embedding    weight [V, D];                      y = weight[ids]
//   LayerNorm    weight [D], bias [D]
//   RMSNorm      weight [D]
//   FeedForward  "0" Linear(d, mult*d) -> GELU -> "2" Linear(mult*d, d)  (the mixer's nn.Sequential)
//   SwiGLUMLP    gate_proj, up_proj Linear(d, h), down_proj Linear(h, d), no biases (Llama)
// Inputs are [..., features]; every layer works for any number of leading dims. Parameters
// follow opts' dtype and device; see nn/init.h for how they are drawn.
#include <cstdint>

#include "core/factories.h"
#include "nn/init.h"
#include "nn/module.h"

namespace mg {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen, Init init = {},
         TensorOptions opts = {});
  // Uses an existing weight [out, in] (tied weights); no bias.
  explicit Linear(const Tensor& shared_weight);
  Tensor forward(const Tensor& x) const;
  // x W^T without the bias, for a caller that fuses the bias into the next op (FeedForward's
  // bias_gelu): forward(x) == forward_no_bias(x) + bias.
  Tensor forward_no_bias(const Tensor& x) const;
  int64_t in_features() const { return weight.size(1); }
  int64_t out_features() const { return weight.size(0); }

  Tensor weight, bias;  // bias undefined when absent
};

class Conv1D : public Module {
 public:
  Conv1D(int64_t in_features, int64_t out_features, Generator& gen, Init init = Init::normal(),
         TensorOptions opts = {});
  Tensor forward(const Tensor& x) const;
  // x W without the bias (GptMLP fuses it into bias_gelu): forward(x) == forward_no_bias(x) + bias.
  Tensor forward_no_bias(const Tensor& x) const;

  Tensor weight, bias;
};

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, Generator& gen, Init init = {}, TensorOptions opts = {});
  Tensor forward(const Tensor& ids) const;  // ids i32 [...] -> [..., D]

  Tensor weight;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, TensorOptions opts = {});
  Tensor forward(const Tensor& x) const;

  Tensor weight, bias;
  double eps;
};

class RMSNorm : public Module {
 public:
  explicit RMSNorm(int64_t dim, double eps = 1e-6, TensorOptions opts = {});
  Tensor forward(const Tensor& x) const;

  Tensor weight;
  double eps;
};

// Linear -> GELU -> Linear with biases; exact erf GELU unless tanh_gelu.
class FeedForward : public Module {
 public:
  FeedForward(int64_t dim, int64_t hidden, Generator& gen, Init init = {}, TensorOptions opts = {},
              bool tanh_gelu = false);
  Tensor forward(const Tensor& x) const;

  Linear in_proj, out_proj;  // registered as "0" and "2"
  bool tanh_gelu;
};

class SwiGLUMLP : public Module {
 public:
  SwiGLUMLP(int64_t dim, int64_t hidden, Generator& gen, Init init = Init::normal(), TensorOptions opts = {});
  Tensor forward(const Tensor& x) const;  // down(silu(gate(x)) * up(x))

  Linear gate_proj, up_proj, down_proj;
};

}  // namespace mg
