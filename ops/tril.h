#pragma once
#include <cstdint>

#include "core/tensor.h"

namespace mg {

// Lower triangle of the trailing [R, C] matrices of x (any layout, at least 2 dims): entries with
// c - r > diagonal become 0, the rest are copied. diagonal 0 keeps the main diagonal, -1 drops it,
// 1 keeps one superdiagonal (torch.tril). Differentiable: the gradient is tril of the incoming one.
Tensor tril(const Tensor& x, int64_t diagonal = 0);

}  // namespace mg
