#pragma once
// Embedding lookup.
#include "core/tensor.h"

namespace mg {

// Rows of weight [V, D] picked by i32 ids of any shape: out[..., :] = weight[ids[...], :], shape
// [..., D], contiguous. An id outside [0, V) throws, naming it and its position. Differentiable in
// weight: the backward scatter-adds rows of the gradient, so repeated ids accumulate, in a fixed
// order (deterministic).
Tensor embedding(const Tensor& weight, const Tensor& ids);

}  // namespace mg
