#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace mg {

// Rotary position embedding, Llama's rotate-half convention (HF apply_rotary_pos_emb):
//   out = x * cos + rotate_half(x) * sin,  rotate_half(x) = cat(-x[..., Dh/2:], x[..., :Dh/2]),
// where pair i (elements i and i + Dh/2) turns by the angle (pos_offset + t) * theta^(-2i/Dh).
// x is [B, H, T, Dh] (any leading dims; T is dim -2), any layout, f32, f64 or bf16 (rotated in
// f32 and rounded once, so a bf16 q or k under autocast is never widened into a copy), Dh even.
// Returns a contiguous tensor of x's shape. The backward is the inverse (transposed) rotation.
Tensor rope(const Tensor& x, double theta = 10000.0, int64_t pos_offset = 0);

}  // namespace mg
