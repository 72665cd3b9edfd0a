#pragma once
// gradcheck: compares the gradients that backward() computes with central finite differences.
// Inputs must be f64 CPU tensors; those with requires_grad are checked (any layout: transposed
// or sliced leaves are perturbed through their strides). A random cotangent v (fixed seed) turns
// the check into v^T J, so every input element is compared with one backward pass.
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace mg {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-3;
  uint64_t seed = 1234;
};

struct GradcheckResult {
  bool ok = true;
  int input = -1;          // worst input
  int64_t index = -1;      // worst element (logical, row-major) of that input
  double analytical = 0, numerical = 0;
  double worst_excess = 0;  // |a-n| - (atol + rtol |n|) at the worst element
  std::string message;      // human-readable verdict naming the worst element
};

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                          const std::vector<Tensor>& inputs, GradcheckOptions opts = {});

}  // namespace mg
