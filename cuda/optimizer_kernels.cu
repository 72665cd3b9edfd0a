// Fused optimizer updates (torch.optim.AdamW and SGD rules, see nn/optim.h): one pass over the
// parameter and its state, each element independent.
#include <cmath>

#include "cuda/cuda_backend.h"
#include "cuda/kernel_utils.cuh"

namespace mg::cuda {
namespace {

template <class T>
__global__ void adamw_kernel(T* p, const T* g, T* m, T* v, int64_t n, T decay, T one_minus_b1, T beta2,
                             T one_minus_b2, T step_size, T sqrt_bc2, T eps) {
  MG_GRID_STRIDE(i, n) {
    const T gi = g[i];
    const T mi = m[i] + one_minus_b1 * (gi - m[i]);
    const T vi = beta2 * v[i] + one_minus_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step_size * mi / (sqrt(vi) / sqrt_bc2 + eps);  // the CPU kernel's order (torch's)
  }
}

template <class T>
__global__ void sgd_kernel(T* p, const T* g, T* buf, int64_t n, T lr, T momentum, T one_minus_damp, T wd,
                           bool nesterov) {
  MG_GRID_STRIDE(i, n) {
    // Always g + wd * p, as the CPU kernel computes it: skipping the term when wd == 0 would turn
    // an infinite parameter's NaN (0 * inf) into inf and part from the CPU.
    T d = g[i] + wd * p[i];
    if (buf) {
      const T b = momentum * buf[i] + one_minus_damp * d;
      buf[i] = b;
      d = nesterov ? d + momentum * b : b;
    }
    p[i] -= lr * d;
  }
}

}  // namespace

void CudaBackend::adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg,
                             const Tensor& exp_avg_sq, double lr, double beta1, double beta2, double eps,
                             double weight_decay, int64_t step) {
  MG_CHECK(step >= 1, "cuda adamw_step: step must be >= 1, got ", step);
  const int64_t n = param.numel();
  if (n == 0) return;
  const double bc1 = 1 - std::pow(beta1, double(step)), bc2 = 1 - std::pow(beta2, double(step));
  dispatch_float(param.dtype(), "adamw_step", [&](auto tag) {
    using T = decltype(tag);
    adamw_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(
        ptr<T>(param), ptr<const T>(grad), ptr<T>(exp_avg), ptr<T>(exp_avg_sq), n, T(1 - lr * weight_decay),
        T(1 - beta1), T(beta2), T(1 - beta2), T(lr / bc1), T(std::sqrt(bc2)), T(eps));
  });
  CUDA_CHECK_LAUNCH("adamw_step");
}

void CudaBackend::sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, double lr,
                           double momentum, double dampening, double weight_decay, bool nesterov) {
  const int64_t n = param.numel();
  if (n == 0) return;
  dispatch_float(param.dtype(), "sgd_step", [&](auto tag) {
    using T = decltype(tag);
    T* buf = momentum != 0 ? ptr_or_null<T>(momentum_buf) : nullptr;
    MG_CHECK(momentum == 0 || buf, "cuda sgd_step: momentum ", momentum, " needs a momentum buffer");
    sgd_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(ptr<T>(param), ptr<const T>(grad), buf, n, T(lr),
                                                          T(momentum), T(1 - dampening), T(weight_decay), nesterov);
  });
  CUDA_CHECK_LAUNCH("sgd_step");
}

}  // namespace mg::cuda
