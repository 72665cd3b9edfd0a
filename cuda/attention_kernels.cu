// Fused scaled dot-product attention. One block per query row (forward, dq) or key row (dk, dv)
// streams over the other rows in chunks of kAttnThreads, one row per thread, so extra memory is a
// few rows and one chunk of probabilities per block: O(tile), never O(T^2). The forward keeps an
// online softmax (running max and sum, rescaled accumulator). The backward recomputes the
// probabilities from q, k and the saved logsumexp; every gradient row has exactly one writing
// block, so no atomics and the same bits every run.
// This is the straightforward form: it re-reads k/v (or q/dout) rows from L2 for every row of the
// block's head rather than sharing tiles between rows, trading speed for simplicity.
#include "cuda/cuda_backend.h"
#include "cuda/kernel_utils.cuh"

namespace mg::cuda {
namespace {

constexpr int kAttnThreads = 128;

template <class T>
__device__ __forceinline__ T dot_row(const T* a_shared, const T* b, int64_t n) {
  T s = 0;
  for (int64_t d = 0; d < n; ++d) s += a_shared[d] * b[d];
  return s;
}

// Shared memory: q_i [Dh] | acc [Dh] | p [kAttnThreads].
template <class T>
__global__ void attention_forward_kernel(const T* q, const T* k, const T* v, T* out, T* lse, int64_t T_len,
                                         int64_t Dh, T scale, bool causal) {
  extern __shared__ __align__(16) unsigned char smem[];
  T* qs = reinterpret_cast<T*>(smem);
  T* acc = qs + Dh;
  T* p = acc + Dh;
  const int64_t row = blockIdx.x, i = row % T_len, head = row - i;  // head = first row of this (b, h)
  const T* kh = k + head * Dh;
  const T* vh = v + head * Dh;
  for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) {
    qs[d] = q[row * Dh + d];
    acc[d] = 0;
  }
  __syncthreads();
  const int64_t limit = causal ? i + 1 : T_len;
  T m = T(-INFINITY), l = 0;
  for (int64_t j0 = 0; j0 < limit; j0 += blockDim.x) {
    const int64_t j = j0 + threadIdx.x;
    const T s = j < limit ? dot_row(qs, kh + j * Dh, Dh) * scale : T(-INFINITY);
    const T m_new = MaxOp()(m, block_reduce(s, MaxOp()));
    const T e = j < limit ? exp(s - m_new) : T(0);
    const T alpha = exp(m - m_new);
    l = l * alpha + block_reduce(e, SumOp());
    p[threadIdx.x] = e;
    __syncthreads();
    const int64_t count = min(int64_t(blockDim.x), limit - j0);
    for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) {
      T a = acc[d] * alpha;
      for (int64_t jj = 0; jj < count; ++jj) a += p[jj] * vh[(j0 + jj) * Dh + d];
      acc[d] = a;
    }
    __syncthreads();  // p is rewritten by the next chunk
    m = m_new;
  }
  for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) out[row * Dh + d] = acc[d] / l;
  if (threadIdx.x == 0) lse[row] = m + log(l);
}

// D_i = dout_i . out_i, one warp per row.
template <class T>
__global__ void attention_rowdot_kernel(const T* dout, const T* out, T* D, int64_t rows, int64_t Dh) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= rows) return;
  T s = 0;
  for (int64_t d = lane; d < Dh; d += 32) s += dout[row * Dh + d] * out[row * Dh + d];
  s = warp_reduce(s, SumOp());
  if (lane == 0) D[row] = s;
}

// dq_i = scale * sum_j dS_ij k_j, dS_ij = P_ij (dout_i . v_j - D_i).
// Shared memory: q_i [Dh] | dout_i [Dh] | acc [Dh] | dS [kAttnThreads].
template <class T>
__global__ void attention_backward_dq_kernel(const T* q, const T* k, const T* v, const T* dout, const T* lse,
                                             const T* D, T* dq, int64_t T_len, int64_t Dh, T scale, bool causal) {
  extern __shared__ __align__(16) unsigned char smem[];
  T* qs = reinterpret_cast<T*>(smem);
  T* dos = qs + Dh;
  T* acc = dos + Dh;
  T* ds = acc + Dh;
  const int64_t row = blockIdx.x, i = row % T_len, head = row - i;
  const T* kh = k + head * Dh;
  const T* vh = v + head * Dh;
  for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) {
    qs[d] = q[row * Dh + d];
    dos[d] = dout[row * Dh + d];
    acc[d] = 0;
  }
  __syncthreads();
  const T li = lse[row], Di = D[row];
  const int64_t limit = causal ? i + 1 : T_len;
  for (int64_t j0 = 0; j0 < limit; j0 += blockDim.x) {
    const int64_t j = j0 + threadIdx.x;
    T g = 0;
    if (j < limit) {
      const T p = exp(dot_row(qs, kh + j * Dh, Dh) * scale - li);
      g = p * (dot_row(dos, vh + j * Dh, Dh) - Di);
    }
    ds[threadIdx.x] = g;
    __syncthreads();
    const int64_t count = min(int64_t(blockDim.x), limit - j0);
    for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) {
      T a = acc[d];
      for (int64_t jj = 0; jj < count; ++jj) a += ds[jj] * kh[(j0 + jj) * Dh + d];
      acc[d] = a;
    }
    __syncthreads();
  }
  for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) dq[row * Dh + d] = acc[d] * scale;
}

// dv_j = sum_i P_ij dout_i, dk_j = scale * sum_i dS_ij q_i over the query rows i that see key j.
// Shared memory: k_j [Dh] | v_j [Dh] | acc_k [Dh] | acc_v [Dh] | P [kAttnThreads] | dS [kAttnThreads].
template <class T>
__global__ void attention_backward_dkv_kernel(const T* q, const T* k, const T* v, const T* dout, const T* lse,
                                              const T* D, T* dk, T* dv, int64_t T_len, int64_t Dh, T scale,
                                              bool causal) {
  extern __shared__ __align__(16) unsigned char smem[];
  T* ks = reinterpret_cast<T*>(smem);
  T* vs = ks + Dh;
  T* acc_k = vs + Dh;
  T* acc_v = acc_k + Dh;
  T* ps = acc_v + Dh;
  T* ds = ps + blockDim.x;
  const int64_t row = blockIdx.x, j = row % T_len, head = row - j;
  const T* qh = q + head * Dh;
  const T* doh = dout + head * Dh;
  for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) {
    ks[d] = k[row * Dh + d];
    vs[d] = v[row * Dh + d];
    acc_k[d] = 0;
    acc_v[d] = 0;
  }
  __syncthreads();
  const int64_t start = causal ? j : 0;
  for (int64_t i0 = start; i0 < T_len; i0 += blockDim.x) {
    const int64_t i = i0 + threadIdx.x;
    T p = 0, g = 0;
    if (i < T_len) {
      p = exp(dot_row(ks, qh + i * Dh, Dh) * scale - lse[head + i]);
      g = p * (dot_row(vs, doh + i * Dh, Dh) - D[head + i]);
    }
    ps[threadIdx.x] = p;
    ds[threadIdx.x] = g;
    __syncthreads();
    const int64_t count = min(int64_t(blockDim.x), T_len - i0);
    for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) {
      T ak = acc_k[d], av = acc_v[d];
      for (int64_t ii = 0; ii < count; ++ii) {
        av += ps[ii] * doh[(i0 + ii) * Dh + d];
        ak += ds[ii] * qh[(i0 + ii) * Dh + d];
      }
      acc_k[d] = ak;
      acc_v[d] = av;
    }
    __syncthreads();
  }
  for (int64_t d = threadIdx.x; d < Dh; d += blockDim.x) {
    dk[row * Dh + d] = acc_k[d] * scale;
    dv[row * Dh + d] = acc_v[d];
  }
}

size_t attention_smem(const char* op, int64_t Dh, int rows_of_dh, int rows_of_chunk, size_t esize) {
  const size_t bytes = (size_t(rows_of_dh) * size_t(Dh) + size_t(rows_of_chunk) * kAttnThreads) * esize;
  MG_CHECK(bytes <= 48 * 1024, "cuda ", op, ": head dim ", Dh, " needs ", bytes,
           " bytes of shared memory per block, more than the 48 KiB this kernel uses");
  return bytes;
}

}  // namespace

void CudaBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                                    const Tensor& out, const Tensor& lse) {
  const int64_t T_len = q.size(2), Dh = q.size(3), rows = q.numel() / std::max<int64_t>(Dh, 1);
  if (q.numel() == 0) return;
  dispatch_float(q.dtype(), "attention_forward", [&](auto tag) {
    using T = decltype(tag);
    const size_t smem = attention_smem("attention_forward", Dh, 2, 1, sizeof(T));
    attention_forward_kernel<T><<<unsigned(rows), kAttnThreads, smem, stream()>>>(
        ptr<const T>(q), ptr<const T>(k), ptr<const T>(v), ptr<T>(out), ptr<T>(lse), T_len, Dh, T(scale), causal);
  });
  CUDA_CHECK_LAUNCH("attention_forward");
}

void CudaBackend::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& out, const Tensor& lse, double scale, bool causal, const Tensor& dq,
                                     const Tensor& dk, const Tensor& dv) {
  const int64_t T_len = q.size(2), Dh = q.size(3), rows = q.numel() / std::max<int64_t>(Dh, 1);
  if (q.numel() == 0) return;
  dispatch_float(q.dtype(), "attention_backward", [&](auto tag) {
    using T = decltype(tag);
    const size_t smem_dq = attention_smem("attention_backward", Dh, 3, 1, sizeof(T));
    const size_t smem_dkv = attention_smem("attention_backward", Dh, 4, 2, sizeof(T));
    DeviceBuffer D(size_t(rows) * sizeof(T));
    const int warps = 8;
    attention_rowdot_kernel<T><<<unsigned((rows + warps - 1) / warps), warps * 32, 0, stream()>>>(
        ptr<const T>(dout), ptr<const T>(out), D.as<T>(), rows, Dh);
    attention_backward_dq_kernel<T><<<unsigned(rows), kAttnThreads, smem_dq, stream()>>>(
        ptr<const T>(q), ptr<const T>(k), ptr<const T>(v), ptr<const T>(dout), ptr<const T>(lse), D.as<const T>(),
        ptr<T>(dq), T_len, Dh, T(scale), causal);
    attention_backward_dkv_kernel<T><<<unsigned(rows), kAttnThreads, smem_dkv, stream()>>>(
        ptr<const T>(q), ptr<const T>(k), ptr<const T>(v), ptr<const T>(dout), ptr<const T>(lse), D.as<const T>(),
        ptr<T>(dk), ptr<T>(dv), T_len, Dh, T(scale), causal);
  });
  CUDA_CHECK_LAUNCH("attention_backward");
}

}  // namespace mg::cuda
