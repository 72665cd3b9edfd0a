// Placeholder: replaced by the real kernels of this family.
#include "cpu/cpu_backend.h"

namespace mg::cpu {
void CpuBackend::adamw_step(const Tensor&, const Tensor&, const Tensor&, const Tensor&, double, double, double, double, double, int64_t) { throw Error("cpu: kernel not implemented yet"); }
void CpuBackend::sgd_step(const Tensor&, const Tensor&, const Tensor&, double, double, double, double, bool) { throw Error("cpu: kernel not implemented yet"); }
}  // namespace mg::cpu
