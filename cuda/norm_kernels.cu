// LayerNorm and RMSNorm over the last dim of x [rows, D], forward and backward. One block per
// row for the row-wise work; weight/bias gradients (sums over rows) in two deterministic
// phases: per-chunk partial sums, then one ordered sum per column. No atomics anywhere.
#include "cuda/cuda_backend.h"
#include "cuda/kernel_utils.cuh"

namespace mg::cuda {
namespace {

constexpr int kRowThreadsMax = 256;

template <class T>
__global__ void layernorm_forward_kernel(const T* x, const T* w, const T* b, T eps, T* y, T* mean, T* rstd,
                                         int64_t D) {
  const int64_t row = blockIdx.x;
  const T* xr = x + row * D;
  T* yr = y + row * D;
  T s = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) s += xr[i];
  const T mu = block_reduce(s, SumOp()) / T(D);
  T q = 0;  // centred second pass: no cancellation for rows with a large mean
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    const T d = xr[i] - mu;
    q += d * d;
  }
  const T rs = T(1) / sqrt(block_reduce(q, SumOp()) / T(D) + eps);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    T v = (xr[i] - mu) * rs;
    if (w) v *= w[i];
    if (b) v += b[i];
    yr[i] = v;
  }
  if (threadIdx.x == 0) {
    mean[row] = mu;
    rstd[row] = rs;
  }
}

template <class T>
__global__ void rmsnorm_forward_kernel(const T* x, const T* w, T eps, T* y, T* rstd, int64_t D) {
  const int64_t row = blockIdx.x;
  const T* xr = x + row * D;
  T* yr = y + row * D;
  T q = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) q += xr[i] * xr[i];
  const T rs = T(1) / sqrt(block_reduce(q, SumOp()) / T(D) + eps);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) yr[i] = w ? xr[i] * rs * w[i] : xr[i] * rs;
  if (threadIdx.x == 0) rstd[row] = rs;
}

// xhat = (x - mean) * rstd (mean == nullptr: RMSNorm, xhat = x * rstd), g = dy * w.
// LayerNorm: dx = rstd (g - mean(g) - xhat mean(g xhat)); RMSNorm: dx = rstd (g - xhat mean(g xhat)).
template <class T>
__global__ void norm_backward_dx_kernel(const T* dy, const T* x, const T* w, const T* mean, const T* rstd, T* dx,
                                        int64_t D) {
  const int64_t row = blockIdx.x;
  const T* dyr = dy + row * D;
  const T* xr = x + row * D;
  T* dxr = dx + row * D;
  const T mu = mean ? mean[row] : T(0), rs = rstd[row];
  T sg = 0, sgx = 0;
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    const T g = w ? dyr[i] * w[i] : dyr[i];
    sg += g;
    sgx += g * (xr[i] - mu) * rs;
  }
  const T mean_g = mean ? block_reduce(sg, SumOp()) / T(D) : T(0);
  const T mean_gx = block_reduce(sgx, SumOp()) / T(D);
  for (int64_t i = threadIdx.x; i < D; i += blockDim.x) {
    const T g = w ? dyr[i] * w[i] : dyr[i];
    dxr[i] = rs * (g - mean_g - (xr[i] - mu) * rs * mean_gx);
  }
}

// Phase 1: block (32, 8) sums dy * xhat (and dy) over one chunk of rows for 32 columns.
constexpr int kColTile = 32, kRowLanes = 8;

template <class T>
__global__ void norm_param_partials_kernel(const T* dy, const T* x, const T* mean, const T* rstd, T* part_w,
                                           T* part_b, int64_t rows, int64_t D, int64_t rows_per_chunk) {
  __shared__ T sw[kRowLanes][kColTile + 1], sb[kRowLanes][kColTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t col = int64_t(blockIdx.x) * kColTile + tx, chunk = blockIdx.y;
  const int64_t r0 = chunk * rows_per_chunk, r1 = min(rows, r0 + rows_per_chunk);
  T aw = 0, ab = 0;
  if (col < D) {
    for (int64_t r = r0 + ty; r < r1; r += kRowLanes) {
      const T d = dy[r * D + col];
      aw += d * (x[r * D + col] - (mean ? mean[r] : T(0))) * rstd[r];
      ab += d;
    }
  }
  sw[ty][tx] = aw;
  sb[ty][tx] = ab;
  __syncthreads();
  if (ty == 0 && col < D) {
    T w = sw[0][tx], b = sb[0][tx];
    for (int k = 1; k < kRowLanes; ++k) {
      w += sw[k][tx];
      b += sb[k][tx];
    }
    part_w[chunk * D + col] = w;
    if (part_b) part_b[chunk * D + col] = b;
  }
}

// Phase 2: each column sums its chunks in order.
template <class T>
__global__ void norm_param_final_kernel(const T* part_w, const T* part_b, T* dw, T* db, int64_t chunks, int64_t D) {
  MG_GRID_STRIDE(col, D) {
    T w = 0, b = 0;
    for (int64_t c = 0; c < chunks; ++c) {
      w += part_w[c * D + col];
      if (db) b += part_b[c * D + col];
    }
    if (dw) dw[col] = w;
    if (db) db[col] = b;
  }
}

template <class T>
void norm_param_grads(const T* dy, const T* x, const T* mean, const T* rstd, T* dw, T* db, int64_t rows, int64_t D) {
  if (!dw && !db) return;
  // The chunking depends on the shape only, so the summation order (and the result) is fixed.
  const int64_t rows_per_chunk = std::max<int64_t>(32, (rows + 127) / 128);
  const int64_t chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  DeviceBuffer part(size_t(chunks * D) * sizeof(T) * 2);
  T* part_w = part.as<T>();
  T* part_b = db ? part_w + chunks * D : nullptr;
  const dim3 grid(unsigned((D + kColTile - 1) / kColTile), unsigned(chunks)), block(kColTile, kRowLanes);
  norm_param_partials_kernel<T><<<grid, block, 0, stream()>>>(dy, x, mean, rstd, part_w, part_b, rows, D,
                                                              rows_per_chunk);
  norm_param_final_kernel<T><<<grid_for(D), kThreads, 0, stream()>>>(part_w, part_b, dw, db, chunks, D);
}

}  // namespace

void CudaBackend::layernorm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                                    const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  launch_per_row(x, "layernorm_forward", [&](auto tag, const LastDimRows& r) {
    using T = decltype(tag);
    layernorm_forward_kernel<T><<<r.blocks(), r.threads(kRowThreadsMax), 0, stream()>>>(
        ptr<const T>(x), ptr_or_null<const T>(weight), ptr_or_null<const T>(bias), T(eps), ptr<T>(y), ptr<T>(mean),
        ptr<T>(rstd), r.n);
  });
}

void CudaBackend::layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                     const Tensor& rstd, const Tensor& dx, const Tensor& dweight,
                                     const Tensor& dbias) {
  const LastDimRows r(x, "layernorm_backward");
  const int64_t rows = r.rows, D = r.n;
  if (D == 0) return;
  dispatch_float(x.dtype(), "layernorm_backward", [&](auto tag) {
    using T = decltype(tag);
    if (rows == 0) {  // parameter gradients of an empty batch are zero
      if (dweight.defined()) fill(dweight, 0.0);
      if (dbias.defined()) fill(dbias, 0.0);
      return;
    }
    if (dx.defined())
      norm_backward_dx_kernel<T><<<r.blocks(), r.threads(kRowThreadsMax), 0, stream()>>>(
          ptr<const T>(dy), ptr<const T>(x), ptr_or_null<const T>(weight), ptr<const T>(mean), ptr<const T>(rstd),
          ptr<T>(dx), D);
    norm_param_grads<T>(ptr<const T>(dy), ptr<const T>(x), ptr<const T>(mean), ptr<const T>(rstd),
                        ptr_or_null<T>(dweight), ptr_or_null<T>(dbias), rows, D);
  });
  CUDA_CHECK_LAUNCH("layernorm_backward");
}

void CudaBackend::rmsnorm_forward(const Tensor& x, const Tensor& weight, double eps, const Tensor& y,
                                  const Tensor& rstd) {
  launch_per_row(x, "rmsnorm_forward", [&](auto tag, const LastDimRows& r) {
    using T = decltype(tag);
    rmsnorm_forward_kernel<T><<<r.blocks(), r.threads(kRowThreadsMax), 0, stream()>>>(
        ptr<const T>(x), ptr_or_null<const T>(weight), T(eps), ptr<T>(y), ptr<T>(rstd), r.n);
  });
}

void CudaBackend::rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& rstd,
                                   const Tensor& dx, const Tensor& dweight) {
  const LastDimRows r(x, "rmsnorm_backward");
  const int64_t rows = r.rows, D = r.n;
  if (D == 0) return;
  dispatch_float(x.dtype(), "rmsnorm_backward", [&](auto tag) {
    using T = decltype(tag);
    if (rows == 0) {
      if (dweight.defined()) fill(dweight, 0.0);
      return;
    }
    if (dx.defined())
      norm_backward_dx_kernel<T><<<r.blocks(), r.threads(kRowThreadsMax), 0, stream()>>>(
          ptr<const T>(dy), ptr<const T>(x), ptr_or_null<const T>(weight), nullptr, ptr<const T>(rstd), ptr<T>(dx),
          D);
    norm_param_grads<T>(ptr<const T>(dy), ptr<const T>(x), nullptr, ptr<const T>(rstd), ptr_or_null<T>(dweight),
                        nullptr, rows, D);
  });
  CUDA_CHECK_LAUNCH("rmsnorm_backward");
}

}  // namespace mg::cuda
