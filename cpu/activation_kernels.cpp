// Placeholder: replaced by the real kernels of this family.
#include "cpu/cpu_backend.h"

namespace mg::cpu {
void CpuBackend::activation_forward(Activation, const Tensor&, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
void CpuBackend::activation_backward(Activation, const Tensor&, const Tensor&, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
void CpuBackend::swiglu_forward(const Tensor&, const Tensor&, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
void CpuBackend::swiglu_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
}  // namespace mg::cpu
