// Placeholder: replaced by the real kernels of this family.
#include "cpu/cpu_backend.h"

namespace mg::cpu {
void CpuBackend::softmax_forward(const Tensor&, const Tensor&, bool) { throw Error("cpu: kernel not implemented yet"); }
void CpuBackend::softmax_backward(const Tensor&, const Tensor&, const Tensor&, bool) { throw Error("cpu: kernel not implemented yet"); }
void CpuBackend::cross_entropy_forward(const Tensor&, const Tensor&, int64_t, const Tensor&, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
void CpuBackend::cross_entropy_backward(const Tensor&, const Tensor&, const Tensor&, int64_t, const Tensor&, double, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
}  // namespace mg::cpu
