// Inverted dropout: element i of x is kept and scaled by 1 / (1 - p), or zeroed, by its Philox
// draw (core/philox.h, dropout_keep), the same draw as the CPU kernel's. One multiply per kept
// element, rounded once, so both devices give the same bits.
#include "core/philox.h"
#include "cuda/cuda_backend.h"
#include "cuda/kernel_utils.cuh"

namespace mg::cuda {
namespace {

template <class T>
__global__ void dropout_kernel(const T* x, T* out, int64_t n, double p, T scale, uint64_t seed, uint64_t offset) {
  MG_GRID_STRIDE(i, n) out[i] = philox::dropout_keep(seed, offset, uint64_t(i), p) ? x[i] * scale : T(0);
}

}  // namespace

void CudaBackend::dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    dropout_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(ptr<const T>(x), ptr<T>(out), n, p,
                                                              T(1.0 / (1.0 - p)), seed, offset);
  });
  CUDA_CHECK_LAUNCH("dropout");
}

}  // namespace mg::cuda
