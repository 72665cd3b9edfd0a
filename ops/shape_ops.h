#pragma once
// Ops that assemble or pick from tensors.
#include <vector>

#include "core/tensor.h"

namespace mg {

// Concatenates along dim; all inputs share dtype, device and every other dim.
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim);
// Stacks along a new dim; all inputs share shape, dtype and device.
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim);
// Picks entries of x along dim by an i32 1-D index tensor (repeats allowed; the backward sums
// repeated indices). Indices out of range throw.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);

}  // namespace mg
