#pragma once
#include "core/tensor.h"

namespace mg {

// torch.matmul semantics: 1-D operands are promoted (and the added dim removed afterwards);
// for >= 2-D, the last two dims multiply ([..., M, K] x [..., K, N]) and the leading batch
// dims broadcast. Transposed operands are handed to the GEMM as transposes, not copied.
// bf16 x bf16 accumulates in f32 and returns bf16. Under autocast (core/autocast.h) f32 operands
// are cast to bf16 first (recorded, so their gradients come back f32).
Tensor matmul(const Tensor& a, const Tensor& b);

// matmul(a, b) + bias for a, b of >= 2 dims, bias [N] (N = b's last dim) added in the GEMM's
// epilogue: one pass over the result instead of two (Linear's bias). bias has the dtype the GEMM
// accumulates in: a's own, or f32 for bf16 operands, so under autocast an f32 bias is added to the
// f32 sum before the one rounding to bf16 (PyTorch's addmm rounds the bias to bf16 first). The
// bias gradient sums over every other dim (in f32 for a bf16 gradient) and has the bias's dtype.
// An undefined bias gives matmul(a, b).
Tensor matmul_bias(const Tensor& a, const Tensor& b, const Tensor& bias);

}  // namespace mg
