// Placeholder: replaced by the real kernels of this family.
#include "cpu/cpu_backend.h"

namespace mg::cpu {
void CpuBackend::attention_forward(const Tensor&, const Tensor&, const Tensor&, double, bool, const Tensor&, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
void CpuBackend::attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, double, bool, const Tensor&, const Tensor&, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
}  // namespace mg::cpu
