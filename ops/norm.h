#pragma once
// Normalisation over the last dim of x [..., D] (leading dims are independent rows).
// weight and bias are [D] tensors of x's dtype and device, or undefined Tensor() for no affine
// transform. Inputs may have any layout; outputs are contiguous with x's shape. Differentiable in
// x, weight and bias.
#include "core/tensor.h"

namespace mg {

// (x - mean) / sqrt(var + eps) * weight + bias, with the biased variance (as torch.nn.LayerNorm).
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// x * rsqrt(mean(x^2) + eps) * weight (as torch.nn.RMSNorm / Llama's RMSNorm).
Tensor rms_norm(const Tensor& x, const Tensor& weight, double eps = 1e-6);

}  // namespace mg
