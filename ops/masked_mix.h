#pragma once
// Token mixing of the masked mixer (docs/paper.md A.1-A.5): a learned matrix over the sequence axis
// whose upper triangle is masked inside the op, so position r mixes positions c <= r only.
#include "core/tensor.h"

namespace mg {

// x [B, C, D], weight [R, C], bias [R] or undefined -> y [B, R, D] (contiguous):
//   y[b, r, :] = sum_{c <= r} weight[r, c] * x[b, c, :] + bias[r]
// Entries of weight with c > r are ignored in forward and get a gradient of exactly 0; the stored
// weight is never written. R == C is the flat mixer; R = e*C followed by a mix back to C is the
// expanded form (docs/paper.md A.3, composed by the caller). Any layouts; f32 or f64, one dtype.
Tensor masked_token_mix(const Tensor& x, const Tensor& weight, const Tensor& bias);

// Multi-head mixing (docs/paper.md A.5, the mixing part): x [B, T, H*Dh] is H heads of Dh channels
// (head h owns channels [h*Dh, (h+1)*Dh)), weight [H, T, T], bias [H, T] or undefined:
//   y[b, t, h*Dh + j] = sum_{s <= t} weight[h, t, s] * x[b, s, h*Dh + j] + bias[h, t]
// Same masking guarantees as masked_token_mix.
Tensor masked_token_mix_heads(const Tensor& x, const Tensor& weight, const Tensor& bias);

}  // namespace mg
