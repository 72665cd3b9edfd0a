// Placeholder: replaced by the real kernels of this family.
#include "cpu/cpu_backend.h"

namespace mg::cpu {
void CpuBackend::layernorm_forward(const Tensor&, const Tensor&, const Tensor&, double, const Tensor&, const Tensor&, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
void CpuBackend::layernorm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
void CpuBackend::rmsnorm_forward(const Tensor&, const Tensor&, double, const Tensor&, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
void CpuBackend::rmsnorm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
}  // namespace mg::cpu
