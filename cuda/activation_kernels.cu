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

// The forms below follow cpu/activation_kernels.cpp: GELU through erfc and the tanh GELU as
// x sigmoid(2u), so that for large negative x no 1 + erf(..) or 1 + tanh(..) cancels (at x = -6 in
// f32 that cancellation returns exactly 0 for a true value of -5.9e-9, and a 4-30% error at -5).
template <class T>
__device__ __forceinline__ T gelu_tanh_u(T x) {
  return T(kSqrt2OverPi) * (x + T(kGeluC) * x * x * x);
}

template <class T>
__device__ __forceinline__ T act_forward(Activation act, T x) {
  switch (act) {
    case Activation::gelu: return T(0.5) * x * erfc(-x * T(kInvSqrt2));
    case Activation::gelu_tanh: return x * sigmoid(T(2) * gelu_tanh_u(x));
    case Activation::silu: return x * sigmoid(x);
    case Activation::relu: return x < T(0) ? T(0) : x;  // relu(NaN) = NaN, as on the CPU and in PyTorch
  }
  return x;
}

template <class T>
__device__ __forceinline__ T act_derivative(Activation act, T x) {
  switch (act) {
    case Activation::gelu:
      return T(0.5) * erfc(-x * T(kInvSqrt2)) + x * T(kInvSqrt2Pi) * exp(T(-0.5) * x * x);
    case Activation::gelu_tanh: {
      // s + 2 x s (1 - s) u'. Beyond |x| = 30 the sigmoid is saturated, so x is clamped there: the
      // value is unchanged and x^3 cannot overflow into 0 * inf.
      const T xc = x < T(-30) ? T(-30) : x > T(30) ? T(30) : x;
      const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluC) * xc * xc);
      const T s = sigmoid(T(2) * gelu_tanh_u(xc));
      return s + T(2) * xc * s * (T(1) - s) * du;
    }
    case Activation::silu: {
      const T s = sigmoid(x);
      return s * (T(1) + x * (T(1) - s));
    }
    case Activation::relu: return x <= T(0) ? T(0) : T(1);
  }
  return T(0);
}

// S: the storage type; arithmetic in compute_t<S> (float for bf16). bias: null or [cols].
template <class S>
__global__ void activation_forward_kernel(Activation act, const S* x, const S* bias, int64_t cols, S* y, int64_t n) {
  using C = compute_t<S>;
  MG_GRID_STRIDE(i, n) {
    C v = convert<C>(x[i]);
    if (bias) v += convert<C>(bias[i % cols]);
    y[i] = convert<S>(act_forward(act, v));
  }
}

template <class S>
__global__ void activation_backward_kernel(Activation act, const S* dy, const S* x, const S* bias, int64_t cols, S* dx,
                                           int64_t n) {
  using C = compute_t<S>;
  MG_GRID_STRIDE(i, n) {
    C v = convert<C>(x[i]);
    if (bias) v += convert<C>(bias[i % cols]);
    const C d = convert<C>(dy[i]);
    // A select for ReLU: dy = inf or NaN where x <= 0 still gives 0, and a NaN x passes dy on
    // (the CPU kernel's rule).
    dx[i] = convert<S>(act == Activation::relu ? (v <= C(0) ? C(0) : d) : d * act_derivative(act, v));
  }
}

// dbias[c] = sum over rows of dx[r, c] as stored, in compute_t<S>: block (32, 8) owns 32 columns;
// thread (tx, ty) sums rows ty, ty + 8, ... in order, then the 8 partials are added in ty order.
// The order depends on the shape alone, so the sum is deterministic (no atomics).
constexpr int kColSumRows = 8;
template <class S>
__global__ void column_sum_kernel(const S* dx, int64_t rows, int64_t cols, compute_t<S>* dbias) {
  using C = compute_t<S>;
  __shared__ C part[kColSumRows][33];
  const int64_t c = int64_t(blockIdx.x) * 32 + threadIdx.x;
  C acc = C(0);
  if (c < cols)
    for (int64_t r = threadIdx.y; r < rows; r += kColSumRows) acc += convert<C>(dx[r * cols + c]);
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < cols) {
    C total = part[0][threadIdx.x];
    for (int k = 1; k < kColSumRows; ++k) total += part[k][threadIdx.x];
    dbias[c] = total;
  }
}

template <class S>
__global__ void swiglu_forward_kernel(const S* gate, const S* up, S* y, int64_t n) {
  using C = compute_t<S>;
  MG_GRID_STRIDE(i, n) {
    const C g = convert<C>(gate[i]);
    y[i] = convert<S>(g * sigmoid(g) * convert<C>(up[i]));
  }
}

template <class S>
__global__ void swiglu_backward_kernel(const S* dy, const S* gate, const S* up, S* dgate, S* dup, int64_t n) {
  using C = compute_t<S>;
  MG_GRID_STRIDE(i, n) {
    const C g = convert<C>(gate[i]), s = sigmoid(g), d = convert<C>(dy[i]);
    if (dgate) dgate[i] = convert<S>(d * convert<C>(up[i]) * s * (C(1) + g * (C(1) - s)));
    if (dup) dup[i] = convert<S>(d * g * s);
  }
}

}  // namespace

void CudaBackend::activation_forward(Activation act, const Tensor& x, const Tensor& bias, const Tensor& y) {
  const int64_t n = x.numel();
  if (n == 0) return;
  const int64_t cols = bias.defined() ? bias.numel() : 1;
  dispatch_float_bf16(x.dtype(), "activation_forward", [&](auto tag) {
    using T = decltype(tag);
    activation_forward_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(act, ptr<const T>(x), ptr_or_null<const T>(bias),
                                                                         cols, ptr<T>(y), n);
  });
  CUDA_CHECK_LAUNCH("activation_forward");
}

void CudaBackend::activation_backward(Activation act, const Tensor& dy, const Tensor& x, const Tensor& bias,
                                      const Tensor& dx, const Tensor& dbias) {
  const int64_t n = x.numel();
  const int64_t cols = bias.defined() ? bias.numel() : 1;
  dispatch_float_bf16(x.dtype(), "activation_backward", [&](auto tag) {
    using T = decltype(tag);
    if (n > 0) {
      activation_backward_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(
          act, ptr<const T>(dy), ptr<const T>(x), ptr_or_null<const T>(bias), cols, ptr<T>(dx), n);
      CUDA_CHECK_LAUNCH("activation_backward");
    }
    if (dbias.defined() && cols > 0) {
      const dim3 block(32, kColSumRows);
      column_sum_kernel<T><<<unsigned((cols + 31) / 32), block, 0, stream()>>>(ptr<const T>(dx), n / cols, cols,
                                                                              ptr<compute_t<T>>(dbias));
      CUDA_CHECK_LAUNCH("activation_backward (bias gradient)");
    }
  });
}

void CudaBackend::swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& y) {
  const int64_t n = gate.numel();
  if (n == 0) return;
  dispatch_float_bf16(gate.dtype(), "swiglu_forward", [&](auto tag) {
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
  dispatch_float_bf16(gate.dtype(), "swiglu_backward", [&](auto tag) {
    using T = decltype(tag);
    swiglu_backward_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(
        ptr<const T>(dy), ptr<const T>(gate), ptr<const T>(up), ptr_or_null<T>(dgate), ptr_or_null<T>(dup), n);
  });
  CUDA_CHECK_LAUNCH("swiglu_backward");
}

}  // namespace mg::cuda
