#pragma once
// Parameter initialisation. Every draw comes from a seeded Generator in f32 on the target device
// and is then converted to the requested dtype, so one seed gives the same weights on CPU and
// CUDA, and an f64 model holds exactly its f32 twin's values (what gradchecks of f64 models
// rely on).
#include "core/factories.h"
#include "core/tensor.h"

namespace mg {

// How a layer initialises its weights.
//   torch_default: PyTorch's defaults (docs/paper.md A.10): Linear / Conv1d weight and bias
//                  U(-1/sqrt(fan_in), 1/sqrt(fan_in)), Embedding N(0, 1).
//   normal:        Hugging Face's _init_weights: weights and embeddings N(0, std), biases 0.
// Norm layers always start at weight 1, bias 0.
struct Init {
  enum class Kind { torch_default, normal };
  Kind kind = Kind::torch_default;
  double std = 0.02;
  static Init torch_default() { return {}; }
  static Init normal(double std = 0.02) { return {Kind::normal, std}; }
};

// New parameter tensors (leaves with requires_grad) of opts' dtype and device.
Tensor init_uniform(const Shape& shape, double bound, Generator& gen, TensorOptions opts);  // U(-bound, bound)
Tensor init_normal(const Shape& shape, double std, Generator& gen, TensorOptions opts);     // N(0, std^2)
Tensor init_constant(const Shape& shape, double value, TensorOptions opts);

}  // namespace mg
