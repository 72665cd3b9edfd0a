#pragma once
// Reductions over chosen dims (empty dims = all dims), with keepdim as in PyTorch.
#include <vector>

#include "core/tensor.h"

namespace mg {

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Maximum values. The gradient is shared equally among tied maxima.
Tensor max(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Variance with Bessel's correction by default (correction = 1, as torch.var).
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1, bool keepdim = false);

}  // namespace mg
