#pragma once
// Elementwise activations. Inputs may have any layout; outputs are contiguous with the input's
// shape. f32, f64 and bf16 (bf16 computes in f32 and rounds each output once); differentiable.
#include "core/tensor.h"

namespace mg {

// x * Phi(x) with the exact normal CDF (torch's default), or, when tanh_approx, the tanh form
// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (torch's approximate="tanh").
Tensor gelu(const Tensor& x, bool tanh_approx = false);
// gelu(x + bias) in one pass (the fused bias + GELU of a Linear followed by GELU): bias [C] is
// added along x's last dim (C = x.size(-1)); the gradient of bias sums over every other dim.
// Same dtype and device for both, except under autocast, where bias follows x's dtype.
Tensor bias_gelu(const Tensor& x, const Tensor& bias, bool tanh_approx = false);
// x * sigmoid(x)
Tensor silu(const Tensor& x);
// max(x, 0); the gradient at 0 is 0, as PyTorch
Tensor relu(const Tensor& x);
// silu(gate) * up; gate and up must have the same shape, dtype and device (no broadcasting).
Tensor swiglu(const Tensor& gate, const Tensor& up);

}  // namespace mg
