// Inverted dropout: element i of x is kept and scaled by 1 / (1 - p), or zeroed, by its Philox
// draw (core/philox.h, dropout_keep), the same draw as the CUDA kernel's. One multiply per kept
// element, rounded once, so both devices give the same bits.
#include "core/philox.h"
#include "cpu/cpu_backend.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"

namespace mg::cpu {

void CpuBackend::dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& out) {
  const int64_t n = x.numel();
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = ptr<T>(x);
    T* op = ptr<T>(out);
    const T scale = T(1.0 / (1.0 - p));
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) op[i] = philox::dropout_keep(seed, offset, uint64_t(i), p) ? xp[i] * scale : T(0);
  });
}

}  // namespace mg::cpu
