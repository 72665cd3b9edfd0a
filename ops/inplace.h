#pragma once
// In-place writes, outside autograd: for optimizers, checkpoint loading and initialisation.
// They refuse to write into a tensor that is part of a recorded graph while grad mode is on,
// since that would silently corrupt saved values.
#include "core/tensor.h"

namespace mg {

// dst[...] = src[...] (src broadcast to dst's shape; dtype converted). Returns dst.
const Tensor& assign_(const Tensor& dst, const Tensor& src);
// dst = value everywhere. Returns dst.
const Tensor& fill_(const Tensor& dst, double value);

}  // namespace mg
