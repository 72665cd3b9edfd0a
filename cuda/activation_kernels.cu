// Pointwise activations and SwiGLU, forward and backward, over contiguous tensors.
#include "cuda/cuda_backend.h"
#include "cuda/kernel_utils.cuh"

namespace mg::cuda {
namespace {

template <class T>
__device__ __forceinline__ T sigmoid(T x) {
  return T(1) / (T(1) + exp(-x));
}

// gelu_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluC = 0.044715;
constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;

template <class T>
__device__ __forceinline__ T act_forward(Activation act, T x) {
  switch (act) {
    case Activation::gelu: return T(0.5) * x * (T(1) + erf(x * T(kInvSqrt2)));
    case Activation::gelu_tanh: return T(0.5) * x * (T(1) + tanh(T(kSqrt2OverPi) * (x + T(kGeluC) * x * x * x)));
    case Activation::silu: return x * sigmoid(x);
    case Activation::relu: return x > T(0) ? x : T(0);
  }
  return x;
}

template <class T>
__device__ __forceinline__ T act_derivative(Activation act, T x) {
  switch (act) {
    case Activation::gelu:
      return T(0.5) * (T(1) + erf(x * T(kInvSqrt2))) + x * T(kInvSqrt2Pi) * exp(T(-0.5) * x * x);
    case Activation::gelu_tanh: {
      const T t = tanh(T(kSqrt2OverPi) * (x + T(kGeluC) * x * x * x));
      return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * T(kSqrt2OverPi) * (T(1) + T(3 * kGeluC) * x * x);
    }
    case Activation::silu: {
      const T s = sigmoid(x);
      return s * (T(1) + x * (T(1) - s));
    }
    case Activation::relu: return x > T(0) ? T(1) : T(0);
  }
  return T(0);
}

template <class T>
__global__ void activation_forward_kernel(Activation act, const T* x, T* y, int64_t n) {
  MG_GRID_STRIDE(i, n) y[i] = act_forward(act, x[i]);
}

template <class T>
__global__ void activation_backward_kernel(Activation act, const T* dy, const T* x, T* dx, int64_t n) {
  MG_GRID_STRIDE(i, n) dx[i] = dy[i] * act_derivative(act, x[i]);
}

template <class T>
__global__ void swiglu_forward_kernel(const T* gate, const T* up, T* y, int64_t n) {
  MG_GRID_STRIDE(i, n) {
    const T g = gate[i];
    y[i] = g * sigmoid(g) * up[i];
  }
}

template <class T>
__global__ void swiglu_backward_kernel(const T* dy, const T* gate, const T* up, T* dgate, T* dup, int64_t n) {
  MG_GRID_STRIDE(i, n) {
    const T g = gate[i], s = sigmoid(g), d = dy[i];
    if (dgate) dgate[i] = d * up[i] * s * (T(1) + g * (T(1) - s));
    if (dup) dup[i] = d * g * s;
  }
}

}  // namespace

void CudaBackend::activation_forward(Activation act, const Tensor& x, const Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return;
  dispatch_float(x.dtype(), "activation_forward", [&](auto tag) {
    using T = decltype(tag);
    activation_forward_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(act, ptr<const T>(x), ptr<T>(y), n);
  });
  CUDA_CHECK_LAUNCH("activation_forward");
}

void CudaBackend::activation_backward(Activation act, const Tensor& dy, const Tensor& x, const Tensor& dx) {
  const int64_t n = x.numel();
  if (n == 0) return;
  dispatch_float(x.dtype(), "activation_backward", [&](auto tag) {
    using T = decltype(tag);
    activation_backward_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(act, ptr<const T>(dy), ptr<const T>(x),
                                                                          ptr<T>(dx), n);
  });
  CUDA_CHECK_LAUNCH("activation_backward");
}

void CudaBackend::swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& y) {
  const int64_t n = gate.numel();
  if (n == 0) return;
  dispatch_float(gate.dtype(), "swiglu_forward", [&](auto tag) {
    using T = decltype(tag);
    swiglu_forward_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(ptr<const T>(gate), ptr<const T>(up),
                                                                     ptr<T>(y), n);
  });
  CUDA_CHECK_LAUNCH("swiglu_forward");
}

void CudaBackend::swiglu_backward(const Tensor& dy, const Tensor& gate, const Tensor& up, const Tensor& dgate,
                                  const Tensor& dup) {
  const int64_t n = gate.numel();
  if (n == 0) return;
  dispatch_float(gate.dtype(), "swiglu_backward", [&](auto tag) {
    using T = decltype(tag);
    swiglu_backward_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(
        ptr<const T>(dy), ptr<const T>(gate), ptr<const T>(up), ptr_or_null<T>(dgate), ptr_or_null<T>(dup), n);
  });
  CUDA_CHECK_LAUNCH("swiglu_backward");
}

}  // namespace mg::cuda
