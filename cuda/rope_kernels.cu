// Rotary position embedding (Llama's rotate-half form) on x [N, T, Dh]. Angles are formed and
// rotated in f64 whatever the dtype: positions reach thousands of radians, where an f32 angle
// would already be off in the fourth digit. bf16 is read and written as it is.
#include <cmath>

#include "cuda/cuda_backend.h"
#include "cuda/kernel_utils.cuh"

namespace mg::cuda {
namespace {

// One thread per (row, i < Dh/2) pair: out_i = x_i cos - x_{i+h} sin, out_{i+h} = x_{i+h} cos + x_i sin
// (sin negated for the inverse rotation).
template <class T>
__global__ void rope_kernel(const T* x, T* out, int64_t T_len, int64_t Dh, int64_t pos_offset, double log_theta,
                            bool inverse, int64_t pairs) {
  const int64_t half = Dh / 2;
  MG_GRID_STRIDE(p, pairs) {
    const int64_t i = p % half, row = p / half, t = row % T_len;
    const double inv_freq = exp(-(2.0 * double(i) / double(Dh)) * log_theta);
    double s, c;
    sincos(double(pos_offset + t) * inv_freq, &s, &c);
    if (inverse) s = -s;
    const T* xr = x + row * Dh;
    T* orow = out + row * Dh;
    const double x1 = convert<double>(xr[i]), x2 = convert<double>(xr[i + half]);
    orow[i] = convert<T>(x1 * c - x2 * s);
    orow[i + half] = convert<T>(x2 * c + x1 * s);
  }
}

}  // namespace

void CudaBackend::rope(const Tensor& x, double theta, int64_t pos_offset, bool inverse, const Tensor& out) {
  MG_CHECK(x.dim() >= 2, "cuda rope: expected [N, T, Dh], got ", x.desc());
  const int64_t Dh = x.shape().back(), T_len = x.shape()[size_t(x.dim() - 2)];
  MG_CHECK(Dh % 2 == 0, "cuda rope: head dim ", Dh, " must be even");
  const int64_t pairs = x.numel() / 2;
  if (pairs == 0) return;
  dispatch_float_bf16(x.dtype(), "rope", [&](auto tag) {
    using T = decltype(tag);
    rope_kernel<T><<<grid_for(pairs), kThreads, 0, stream()>>>(ptr<const T>(x), ptr<T>(out), T_len, Dh, pos_offset,
                                                               std::log(theta), inverse, pairs);
  });
  CUDA_CHECK_LAUNCH("rope");
}

}  // namespace mg::cuda
