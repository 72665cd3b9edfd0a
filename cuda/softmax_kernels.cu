// Softmax / log-softmax over the last dim, and cross-entropy from logits. One block per row;
// each row is read from global memory a few times (max, sum, write), which the L1/L2 caches
// absorb for rows of the paper's sizes (vocab 4096).
#include <climits>

#include "cuda/cuda_backend.h"
#include "cuda/kernel_utils.cuh"

namespace mg::cuda {
namespace {

constexpr int kRowThreadsMax = 256;

// max and sum(exp(x - max)) of one row, for every thread of the block.
template <class T>
__device__ __forceinline__ void row_max_sumexp(const T* r, int64_t n, T& m, T& s) {
  T mx = T(-INFINITY);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) mx = MaxOp()(mx, r[i]);
  m = block_reduce(mx, MaxOp());
  T acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += exp(r[i] - m);
  s = block_reduce(acc, SumOp());
}

template <class T>
__global__ void softmax_forward_kernel(const T* x, T* y, int64_t n, bool log_softmax) {
  const int64_t row = blockIdx.x;
  const T* xr = x + row * n;
  T* yr = y + row * n;
  T m, s;
  row_max_sumexp(xr, n, m, s);
  if (log_softmax) {
    const T shift = m + log(s);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = xr[i] - shift;
  } else {
    const T inv = T(1) / s;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = exp(xr[i] - m) * inv;
  }
}

// softmax: dx = y (dy - sum(dy y)); log-softmax: dx = dy - exp(y) sum(dy).
template <class T>
__global__ void softmax_backward_kernel(const T* dy, const T* y, T* dx, int64_t n, bool log_softmax) {
  const int64_t row = blockIdx.x;
  const T* dyr = dy + row * n;
  const T* yr = y + row * n;
  T* dxr = dx + row * n;
  T acc = 0;
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) acc += log_softmax ? dyr[i] : dyr[i] * yr[i];
  const T s = block_reduce(acc, SumOp());
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
    dxr[i] = log_softmax ? dyr[i] - exp(yr[i]) * s : yr[i] * (dyr[i] - s);
}

// A target outside [0, V) that is not ignore_index records its row in *bad_row (the smallest
// such row wins: integer atomics, deterministic) and leaves a NaN loss. S: the logits' stored type
// (bf16 logits are read as they are); losses and lse in compute_t<S>.
template <class S>
__global__ void cross_entropy_forward_kernel(const S* logits, const int32_t* targets, int64_t ignore_index,
                                             compute_t<S>* loss, compute_t<S>* lse, int64_t V,
                                             unsigned long long* bad_row) {
  using T = compute_t<S>;
  const int64_t row = blockIdx.x;
  const S* r = logits + row * V;
  T mx = T(-INFINITY);
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) mx = MaxOp()(mx, convert<T>(r[i]));
  const T m = block_reduce(mx, MaxOp());
  T acc = 0;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) acc += exp(convert<T>(r[i]) - m);
  const T s = block_reduce(acc, SumOp());
  if (threadIdx.x != 0) return;
  const T l = m + log(s);
  lse[row] = l;
  const int64_t t = targets[row];
  if (t == ignore_index) {
    loss[row] = T(0);
  } else if (t < 0 || t >= V) {
    atomicMin(bad_row, (unsigned long long)row);
    loss[row] = T(NAN);
  } else {
    loss[row] = l - convert<T>(r[t]);
  }
}

template <class S>
__global__ void cross_entropy_backward_kernel(const S* logits, const int32_t* targets, const compute_t<S>* lse,
                                              int64_t ignore_index, const compute_t<S>* dloss, int64_t dloss_stride,
                                              compute_t<S> scale, S* dlogits, int64_t V) {
  using T = compute_t<S>;
  const int64_t row = blockIdx.x;
  const S* r = logits + row * V;
  S* d = dlogits + row * V;
  const int64_t t = targets[row];
  if (t == ignore_index) {
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) d[i] = convert<S>(T(0));
    return;
  }
  const T g = scale * dloss[row * dloss_stride], l = lse[row];
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x)
    d[i] = convert<S>(g * (exp(convert<T>(r[i]) - l) - (i == t ? T(1) : T(0))));
}

}  // namespace

void CudaBackend::softmax_forward(const Tensor& x, const Tensor& y, bool log) {
  launch_per_row(x, "softmax_forward", [&](auto tag, const LastDimRows& r) {
    using T = decltype(tag);
    softmax_forward_kernel<T><<<r.blocks(), r.threads(kRowThreadsMax), 0, stream()>>>(ptr<const T>(x), ptr<T>(y),
                                                                                      r.n, log);
  });
}

void CudaBackend::softmax_backward(const Tensor& dy, const Tensor& y, const Tensor& dx, bool log) {
  launch_per_row(y, "softmax_backward", [&](auto tag, const LastDimRows& r) {
    using T = decltype(tag);
    softmax_backward_kernel<T><<<r.blocks(), r.threads(kRowThreadsMax), 0, stream()>>>(ptr<const T>(dy),
                                                                                       ptr<const T>(y), ptr<T>(dx),
                                                                                       r.n, log);
  });
}

void CudaBackend::cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                                        const Tensor& loss_rows, const Tensor& lse) {
  const LastDimRows r(logits, "cross_entropy_forward");
  const int64_t N = r.rows, V = r.n;
  if (N == 0) return;
  MG_CHECK(V > 0, "cuda cross_entropy_forward: no classes in logits ", logits.desc());
  DeviceBuffer bad(sizeof(unsigned long long));
  CUDA_CHECK(cudaMemsetAsync(bad.p, 0xff, sizeof(unsigned long long), stream()), "cross_entropy_forward");
  dispatch_float_bf16(logits.dtype(), "cross_entropy_forward", [&](auto tag) {
    using S = decltype(tag);
    using T = compute_t<S>;
    cross_entropy_forward_kernel<S><<<r.blocks(), r.threads(kRowThreadsMax), 0, stream()>>>(
        ptr<const S>(logits), ptr<const int32_t>(targets), ignore_index, ptr<T>(loss_rows), ptr<T>(lse), V,
        bad.as<unsigned long long>());
  });
  CUDA_CHECK_LAUNCH("cross_entropy_forward");
  // Validating the targets costs one wait for the stream; a bad target must throw here, as on the CPU.
  unsigned long long bad_row = 0;
  CUDA_CHECK(cudaMemcpyAsync(&bad_row, bad.p, sizeof bad_row, cudaMemcpyDeviceToHost, stream()),
             "cross_entropy_forward");
  sync_stream("cross_entropy_forward");
  if (bad_row != ~0ull) {
    int32_t t = 0;
    CUDA_CHECK(cudaMemcpyAsync(&t, ptr<const int32_t>(targets) + bad_row, sizeof t, cudaMemcpyDeviceToHost, stream()),
               "cross_entropy_forward");
    sync_stream("cross_entropy_forward");
    throw Error("cross_entropy: target " + std::to_string(t) + " at row " + std::to_string(bad_row) +
                " is outside [0, " + std::to_string(V) + ") and is not ignore_index " + std::to_string(ignore_index));
  }
}

void CudaBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                         int64_t ignore_index, const Tensor& dloss_rows, double scale,
                                         const Tensor& dlogits) {
  const int64_t dstride = dloss_rows.dim() ? dloss_rows.strides()[0] : 0;
  const LastDimRows r(logits, "cross_entropy_backward");
  if (r.rows == 0 || r.n == 0) return;
  dispatch_float_bf16(logits.dtype(), "cross_entropy_backward", [&](auto tag) {
    using S = decltype(tag);
    using T = compute_t<S>;
    cross_entropy_backward_kernel<S><<<r.blocks(), r.threads(kRowThreadsMax), 0, stream()>>>(
        ptr<const S>(logits), ptr<const int32_t>(targets), ptr<const T>(lse), ignore_index,
        ptr<const T>(dloss_rows), dstride, T(scale), ptr<S>(dlogits), r.n);
  });
  CUDA_CHECK_LAUNCH("cross_entropy_backward");
}

}  // namespace mg::cuda
