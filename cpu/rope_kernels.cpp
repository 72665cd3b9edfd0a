// Placeholder: replaced by the real kernels of this family.
#include "cpu/cpu_backend.h"

namespace mg::cpu {
void CpuBackend::rope(const Tensor&, double, int64_t, bool, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
}  // namespace mg::cpu
