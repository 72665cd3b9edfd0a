#pragma once
#include "core/tensor.h"

namespace mg {

// Scaled dot-product attention, fused (flash-attention style: memory beyond the output stays
// O(tile), never O(T^2)). q, k, v are [B, H, T, Dh] with one shape, dtype (f32, f64 or bf16) and
// device, any layout (a q made by transposing [B, T, H, Dh] is fine). bf16 computes in f32 and
// rounds the output and the gradients once; under autocast f32 inputs are lowered to bf16 first.
// Returns [B, H, T, Dh] (contiguous):
//   out[b, h, i] = sum_j softmax_j(scale * q_i . k_j) v_j,  j <= i when causal, all j otherwise.
// scale 0 means 1 / sqrt(Dh). Differentiable in q, k and v.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal = true,
                                    double scale = 0);

}  // namespace mg
