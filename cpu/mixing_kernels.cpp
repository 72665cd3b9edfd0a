// Placeholder: replaced by the real kernels of this family.
#include "cpu/cpu_backend.h"

namespace mg::cpu {
void CpuBackend::tril(const Tensor&, int64_t, const Tensor&) { throw Error("cpu: kernel not implemented yet"); }
}  // namespace mg::cpu
