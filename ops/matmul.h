#pragma once
#include "core/tensor.h"

namespace mg {

// torch.matmul semantics: 1-D operands are promoted (and the added dim removed afterwards);
// for >= 2-D, the last two dims multiply ([..., M, K] x [..., K, N]) and the leading batch
// dims broadcast. Transposed operands are handed to the GEMM as transposes, not copied.
// bf16 x bf16 accumulates in f32 and returns bf16. Under autocast (core/autocast.h) f32 operands
// are cast to bf16 first (recorded, so their gradients come back f32).
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace mg
