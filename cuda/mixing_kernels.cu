// tril: the causal mask of the masked mixer's token-mixing matrix, applied to any dtype.
#include "cuda/cuda_backend.h"
#include "cuda/kernel_utils.cuh"

namespace mg::cuda {
namespace {

// Raw words of the element's width: zero bits are 0 (+0.0) in every dtype.
template <class U>
__global__ void tril_kernel(const U* x, U* out, int64_t R, int64_t C, int64_t diagonal, int64_t n) {
  MG_GRID_STRIDE(i, n) {
    const int64_t c = i % C, r = (i / C) % R;
    out[i] = c - r > diagonal ? U(0) : x[i];
  }
}

}  // namespace

void CudaBackend::tril(const Tensor& x, int64_t diagonal, const Tensor& out) {
  const int64_t n = x.numel();
  if (n == 0) return;
  MG_CHECK(x.dim() >= 2, "cuda tril: expected at least 2 dims, got ", x.desc());
  const int64_t R = x.shape()[size_t(x.dim() - 2)], C = x.shape().back();
  auto launch = [&](auto tag) {
    using U = decltype(tag);
    tril_kernel<U><<<grid_for(n), kThreads, 0, stream()>>>(static_cast<const U*>(x.raw_data()),
                                                           static_cast<U*>(out.raw_data()), R, C, diagonal, n);
  };
  switch (dtype_size(x.dtype())) {
    case 2: launch(uint16_t{}); break;
    case 4: launch(uint32_t{}); break;
    default: launch(uint64_t{}); break;
  }
  CUDA_CHECK_LAUNCH("tril");
}

}  // namespace mg::cuda
