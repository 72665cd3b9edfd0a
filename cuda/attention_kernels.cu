// Fused scaled dot-product attention, in two forms. Both keep extra memory O(tile), never
// O(T^2): the forward runs an online softmax (running max and sum, rescaled accumulator) and the
// backward recomputes the probabilities from q, k and the saved logsumexp. Every gradient row has
// exactly one writing block, so neither uses atomics: the same bits every run, in deterministic
// mode or not.
//  - tiled (FlashAttention-2 style; f32, head dim <= 128): a block takes a tile of kTile query rows
//    (forward, dq) or key rows (dk, dv) and streams the other side through shared memory kTile rows
//    at a time, so each k/v (or q/dout) row is read once per tile instead of once per row. Four
//    threads share a row: each holds a quarter of the head dim in registers and a quarter of the
//    tile's scores. dq has its own pass over the key tiles (recomputing the scores) instead of
//    accumulating with atomics from the dk/dv blocks.
//  - row-wise (f64, larger head dims, or when chosen): one block per query row (forward, dq) or key
//    row (dk, dv) streams over the other rows in chunks of kAttnThreads, one row per thread.
// bf16 (autocast's q, k, v) runs the f32 kernels on widened copies made per call, so only f32 math
// is ever compiled here and the tensors autograd saves stay bf16.
#include <atomic>

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

// ---- tiled kernels ------------------------------------------------------------------------------

constexpr int kTile = 32;                  // rows per tile, on both sides
constexpr int kRowLanes = 4;               // threads per row
constexpr int kTileThreads = kTile * kRowLanes;
constexpr int kTileLd = kTile + 1;         // row stride of the [kTile, kTile] score tiles

// Reductions over the kRowLanes consecutive lanes that share a row (every lane gets the result).
template <class T, class Op>
__device__ __forceinline__ T row_group_reduce(T v, Op op) {
#pragma unroll
  for (int o = 1; o < kRowLanes; o <<= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Rows [row0, row0 + kTile) of a [T_len, Dh] matrix into dst with row stride Dh + 1 (odd strides
// put the rows a warp reads at once in different banks); rows past T_len become zeros.
template <class T>
__device__ __forceinline__ void load_tile(T* dst, const T* src, int64_t row0, int64_t T_len, int Dh) {
  const int ld = Dh + 1;
  for (int idx = threadIdx.x; idx < kTile * Dh; idx += blockDim.x) {
    const int r = idx / Dh, d = idx - r * Dh;
    dst[r * ld + d] = row0 + r < T_len ? src[(row0 + r) * Dh + d] : T(0);
  }
}

// acc[dj] (this lane's output columns d = lane + kRowLanes * dj, d < Dh) += sum over the tile's
// columns c of w_row[c] * M[c * ld + d], in c order; with Rescale, acc is first multiplied by
// `keep` (the online softmax's correction of the running sum).
template <bool Rescale, class T, int DJ>
__device__ __forceinline__ void add_row_times_tile(T (&acc)[DJ], T keep, const T* w_row, const T* M, int ld, int lane,
                                                   int Dh) {
#pragma unroll
  for (int dj = 0; dj < DJ; ++dj) {
    const int d = lane + kRowLanes * dj;
    if (d < Dh) {
      T a = acc[dj];
      if constexpr (Rescale) a = a * keep;
      for (int c = 0; c < kTile; ++c) a += w_row[c] * M[c * ld + d];
      acc[dj] = a;
    }
  }
}

template <class T>
__device__ __forceinline__ T dot_shared(const T* a, const T* b, int Dh) {
  T s = 0;
  for (int d = 0; d < Dh; ++d) s += a[d] * b[d];
  return s;
}

// Grid (query tiles, B*H). Shared memory: Q | K | V tiles [kTile, Dh+1], P [kTile, kTile+1].
template <class T, int DMAX>
__global__ void __launch_bounds__(kTileThreads)
    attention_forward_tiled_kernel(const T* q, const T* k, const T* v, T* out, T* lse, int64_t T_len, int Dh,
                                   T scale, bool causal) {
  extern __shared__ __align__(16) unsigned char smem[];
  constexpr int DJ = DMAX / kRowLanes;
  const int ld = Dh + 1;
  T* Qs = reinterpret_cast<T*>(smem);
  T* Ks = Qs + kTile * ld;
  T* Vs = Ks + kTile * ld;
  T* Ps = Vs + kTile * ld;
  const int64_t head = int64_t(blockIdx.y) * T_len * Dh, q0 = int64_t(blockIdx.x) * kTile;
  const int r = threadIdx.x / kRowLanes, lane = threadIdx.x % kRowLanes;
  const int64_t i = q0 + r;
  load_tile(Qs, q + head, q0, T_len, Dh);
  T acc[DJ];
#pragma unroll
  for (int dj = 0; dj < DJ; ++dj) acc[dj] = 0;
  T m = T(-INFINITY), l = 0;
  const int64_t kend = causal ? min(T_len, q0 + kTile) : T_len;
  for (int64_t k0 = 0; k0 < kend; k0 += kTile) {
    __syncthreads();  // Q is loaded; the previous K/V tiles have no readers left
    load_tile(Ks, k + head, k0, T_len, Dh);
    load_tile(Vs, v + head, k0, T_len, Dh);
    __syncthreads();
    T s[kTile / kRowLanes];
    T tile_max = T(-INFINITY);
#pragma unroll
    for (int jj = 0; jj < kTile / kRowLanes; ++jj) {
      const int c = lane + kRowLanes * jj;
      const int64_t j = k0 + c;
      const bool visible = j < T_len && (!causal || j <= i);
      s[jj] = visible ? dot_shared(Qs + r * ld, Ks + c * ld, Dh) * scale : T(-INFINITY);
      tile_max = MaxOp()(tile_max, s[jj]);
    }
    const T m_new = MaxOp()(m, row_group_reduce(tile_max, MaxOp()));
    // A row that has seen no visible key yet (only padding rows) keeps a zero accumulator.
    const bool none = m_new == T(-INFINITY);
    const T alpha = none ? T(1) : exp(m - m_new);
    T psum = 0;
#pragma unroll
    for (int jj = 0; jj < kTile / kRowLanes; ++jj) {
      const T p = none ? T(0) : exp(s[jj] - m_new);
      Ps[r * kTileLd + lane + kRowLanes * jj] = p;
      psum += p;
    }
    l = l * alpha + row_group_reduce(psum, SumOp());
    m = m_new;
    __syncwarp();  // a row's probabilities come from its own lanes, all in this warp
    add_row_times_tile<true>(acc, alpha, Ps + r * kTileLd, Vs, ld, lane, Dh);
  }
  if (i < T_len) {
#pragma unroll
    for (int dj = 0; dj < DJ; ++dj) {
      const int d = lane + kRowLanes * dj;
      if (d < Dh) out[head + i * Dh + d] = acc[dj] / l;
    }
    if (lane == 0) lse[int64_t(blockIdx.y) * T_len + i] = m + log(l);
  }
}

// dk_j = scale * sum_i dS_ij q_i, dv_j = sum_i P_ij dout_i over the query tiles that see key tile
// blockIdx.x. Shared memory: K | V | Q | dO tiles [kTile, Dh+1], P^T | dS^T [kTile, kTile+1],
// lse | D [kTile].
template <class T, int DMAX>
__global__ void __launch_bounds__(kTileThreads)
    attention_backward_dkv_tiled_kernel(const T* q, const T* k, const T* v, const T* dout, const T* lse, const T* D,
                                        T* dk, T* dv, int64_t T_len, int Dh, T scale, bool causal) {
  extern __shared__ __align__(16) unsigned char smem[];
  constexpr int DJ = DMAX / kRowLanes;
  const int ld = Dh + 1;
  T* Ks = reinterpret_cast<T*>(smem);
  T* Vs = Ks + kTile * ld;
  T* Qs = Vs + kTile * ld;
  T* dOs = Qs + kTile * ld;
  T* Pt = dOs + kTile * ld;
  T* dSt = Pt + kTile * kTileLd;
  T* lse_s = dSt + kTile * kTileLd;
  T* D_s = lse_s + kTile;
  const int64_t bh = blockIdx.y, head = bh * T_len * Dh, k0 = int64_t(blockIdx.x) * kTile;
  const int c = threadIdx.x / kRowLanes, lane = threadIdx.x % kRowLanes;
  const int64_t j = k0 + c;
  load_tile(Ks, k + head, k0, T_len, Dh);
  load_tile(Vs, v + head, k0, T_len, Dh);
  T acc_k[DJ], acc_v[DJ];
#pragma unroll
  for (int dj = 0; dj < DJ; ++dj) acc_k[dj] = acc_v[dj] = 0;
  // Causal: query rows before k0 see none of this tile's keys.
  for (int64_t i0 = causal ? k0 : 0; i0 < T_len; i0 += kTile) {
    __syncthreads();  // K/V are loaded; the previous Q/dO tiles have no readers left
    load_tile(Qs, q + head, i0, T_len, Dh);
    load_tile(dOs, dout + head, i0, T_len, Dh);
    for (int t = threadIdx.x; t < kTile; t += blockDim.x) {
      lse_s[t] = i0 + t < T_len ? lse[bh * T_len + i0 + t] : T(0);
      D_s[t] = i0 + t < T_len ? D[bh * T_len + i0 + t] : T(0);
    }
    __syncthreads();
#pragma unroll
    for (int rr = 0; rr < kTile / kRowLanes; ++rr) {
      const int r = lane + kRowLanes * rr;
      const int64_t i = i0 + r;
      const bool visible = i < T_len && j < T_len && (!causal || j <= i);
      T p = 0, ds = 0;
      if (visible) {
        p = exp(dot_shared(Ks + c * ld, Qs + r * ld, Dh) * scale - lse_s[r]);
        ds = p * (dot_shared(Vs + c * ld, dOs + r * ld, Dh) - D_s[r]);
      }
      Pt[c * kTileLd + r] = p;
      dSt[c * kTileLd + r] = ds;
    }
    __syncwarp();  // a key row's P and dS come from its own lanes, all in this warp
#pragma unroll
    for (int dj = 0; dj < DJ; ++dj) {
      const int d = lane + kRowLanes * dj;
      if (d < Dh) {
        T ak = acc_k[dj], av = acc_v[dj];
        for (int r = 0; r < kTile; ++r) {
          av += Pt[c * kTileLd + r] * dOs[r * ld + d];
          ak += dSt[c * kTileLd + r] * Qs[r * ld + d];
        }
        acc_k[dj] = ak;
        acc_v[dj] = av;
      }
    }
  }
  if (j < T_len) {
#pragma unroll
    for (int dj = 0; dj < DJ; ++dj) {
      const int d = lane + kRowLanes * dj;
      if (d < Dh) {
        dk[head + j * Dh + d] = acc_k[dj] * scale;
        dv[head + j * Dh + d] = acc_v[dj];
      }
    }
  }
}

// dq_i = scale * sum_j dS_ij k_j over the key tiles query tile blockIdx.x sees.
// Shared memory: Q | dO | K | V tiles [kTile, Dh+1], dS [kTile, kTile+1].
template <class T, int DMAX>
__global__ void __launch_bounds__(kTileThreads)
    attention_backward_dq_tiled_kernel(const T* q, const T* k, const T* v, const T* dout, const T* lse, const T* D,
                                       T* dq, int64_t T_len, int Dh, T scale, bool causal) {
  extern __shared__ __align__(16) unsigned char smem[];
  constexpr int DJ = DMAX / kRowLanes;
  const int ld = Dh + 1;
  T* Qs = reinterpret_cast<T*>(smem);
  T* dOs = Qs + kTile * ld;
  T* Ks = dOs + kTile * ld;
  T* Vs = Ks + kTile * ld;
  T* dSs = Vs + kTile * ld;
  const int64_t bh = blockIdx.y, head = bh * T_len * Dh, q0 = int64_t(blockIdx.x) * kTile;
  const int r = threadIdx.x / kRowLanes, lane = threadIdx.x % kRowLanes;
  const int64_t i = q0 + r;
  const T li = i < T_len ? lse[bh * T_len + i] : T(0), Di = i < T_len ? D[bh * T_len + i] : T(0);
  load_tile(Qs, q + head, q0, T_len, Dh);
  load_tile(dOs, dout + head, q0, T_len, Dh);
  T acc[DJ];
#pragma unroll
  for (int dj = 0; dj < DJ; ++dj) acc[dj] = 0;
  const int64_t kend = causal ? min(T_len, q0 + kTile) : T_len;
  for (int64_t k0 = 0; k0 < kend; k0 += kTile) {
    __syncthreads();
    load_tile(Ks, k + head, k0, T_len, Dh);
    load_tile(Vs, v + head, k0, T_len, Dh);
    __syncthreads();
#pragma unroll
    for (int jj = 0; jj < kTile / kRowLanes; ++jj) {
      const int c = lane + kRowLanes * jj;
      const int64_t j = k0 + c;
      const bool visible = i < T_len && j < T_len && (!causal || j <= i);
      T ds = 0;
      if (visible) {
        const T p = exp(dot_shared(Qs + r * ld, Ks + c * ld, Dh) * scale - li);
        ds = p * (dot_shared(dOs + r * ld, Vs + c * ld, Dh) - Di);
      }
      dSs[r * kTileLd + c] = ds;
    }
    __syncwarp();
    add_row_times_tile<false>(acc, T(1), dSs + r * kTileLd, Ks, ld, lane, Dh);
  }
  if (i < T_len) {
#pragma unroll
    for (int dj = 0; dj < DJ; ++dj) {
      const int d = lane + kRowLanes * dj;
      if (d < Dh) dq[head + i * Dh + d] = acc[dj] * scale;
    }
  }
}

std::atomic<AttentionKernel> g_attention_kernel{AttentionKernel::automatic};

// Shared memory of the tiled kernels: `tiles` [kTile, Dh+1] tiles, `scores` [kTile, kTile+1]
// tiles and `vecs` [kTile] vectors.
size_t tiled_smem(int64_t Dh, int tiles, int scores, int vecs, size_t esize) {
  return (size_t(tiles) * kTile * size_t(Dh + 1) + size_t(scores) * kTile * kTileLd + size_t(vecs) * kTile) * esize;
}

int max_smem_optin() {
  static const int bytes = [] {
    int dev = 0, v = 0;
    CUDA_CHECK(cudaGetDevice(&dev), "attention");
    CUDA_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), "attention");
    return v;
  }();
  return bytes;
}

// Whether the tiled kernels take this call: f32, head dim <= 128, B*H within a grid dimension,
// the largest kernel's shared memory available (unless the row-wise form is forced).
template <class T>
bool use_tiled(const char* op, int64_t Dh, int64_t heads) {
  const AttentionKernel choice = g_attention_kernel.load();
  const bool fits = std::is_same_v<T, float> && Dh >= 1 && Dh <= 128 && heads <= 65535 &&
                    tiled_smem(Dh, 4, 2, 2, sizeof(T)) <= size_t(max_smem_optin());
  // The message names every condition: B*H > 65535 alone (gridDim.y) also refuses an f32 call
  // with a small head dim, which a message about head dims only would leave unexplained.
  if (choice == AttentionKernel::tiled)
    MG_CHECK(fits, "cuda ", op, ": the tiled attention kernel takes f32 with head dim <= 128 and B*H <= 65535, got ",
             sizeof(T) == 8 ? "f64" : "f32", " with head dim ", Dh, " and B*H ", heads);
  return choice != AttentionKernel::rowwise && fits;
}

// Runs f with the kernel template's head-dim bound: 32, 64 or 128.
template <class F>
void dispatch_dmax(int64_t Dh, F&& f) {
  if (Dh <= 32) return f(std::integral_constant<int, 32>{});
  if (Dh <= 64) return f(std::integral_constant<int, 64>{});
  f(std::integral_constant<int, 128>{});
}

// Launches a tiled kernel with `smem` bytes of dynamic shared memory, opting in above 48 KiB.
template <class Kernel, class... Args>
void launch_tiled(const char* op, Kernel kernel, dim3 grid, size_t smem, Args... args) {
  if (smem > 48 * 1024)
    CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)), op);
  kernel<<<grid, kTileThreads, smem, stream()>>>(args...);
}

size_t attention_smem(const char* op, int64_t Dh, int rows_of_dh, int rows_of_chunk, size_t esize) {
  const size_t bytes = (size_t(rows_of_dh) * size_t(Dh) + size_t(rows_of_chunk) * kAttnThreads) * esize;
  MG_CHECK(bytes <= 48 * 1024, "cuda ", op, ": head dim ", Dh, " needs ", bytes,
           " bytes of shared memory per block, more than the 48 KiB this kernel uses");
  return bytes;
}

// An f32 tensor of t's shape on t's device, and one holding t's values (bf16 widened exactly).
Tensor f32_like(const Tensor& t) { return Tensor::empty(t.shape(), TensorOptions{DType::f32, t.device(), false}); }
Tensor widened(CudaBackend& be, const Tensor& t) {
  Tensor f = f32_like(t);
  be.copy(t, f);
  return f;
}

}  // namespace

void set_attention_kernel(AttentionKernel k) { g_attention_kernel.store(k); }
AttentionKernel attention_kernel() { return g_attention_kernel.load(); }

void CudaBackend::attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, bool causal,
                                    const Tensor& out, const Tensor& lse) {
  const int64_t T_len = q.size(2), Dh = q.size(3), rows = q.numel() / std::max<int64_t>(Dh, 1);
  if (q.numel() == 0) return;
  if (q.dtype() == DType::bf16) {
    // bf16 q, k, v and out (lse f32): the f32 kernels on widened copies, the output rounded once.
    // The copies live for this call only; what autograd saves stays bf16.
    Tensor qf = widened(*this, q), kf = widened(*this, k), vf = widened(*this, v), of = f32_like(out);
    attention_forward(qf, kf, vf, scale, causal, of, lse);
    copy(of, out);
    return;
  }
  dispatch_float(q.dtype(), "attention_forward", [&](auto tag) {
    using T = decltype(tag);
    const int64_t heads = rows / std::max<int64_t>(T_len, 1);
    if (use_tiled<T>("attention_forward", Dh, heads)) {
      if constexpr (std::is_same_v<T, float>) {  // use_tiled is false for f64: no f64 instances
        const dim3 grid(unsigned((T_len + kTile - 1) / kTile), unsigned(heads));
        dispatch_dmax(Dh, [&](auto dmax) {
          launch_tiled("attention_forward", attention_forward_tiled_kernel<T, decltype(dmax)::value>, grid,
                       tiled_smem(Dh, 3, 1, 0, sizeof(T)), ptr<const T>(q), ptr<const T>(k), ptr<const T>(v),
                       ptr<T>(out), ptr<T>(lse), T_len, int(Dh), T(scale), causal);
        });
      }
      return;
    }
    const size_t smem = attention_smem("attention_forward", Dh, 2, 1, sizeof(T));
    attention_forward_kernel<T><<<grid_x(rows, "attention_forward"), kAttnThreads, smem, stream()>>>(
        ptr<const T>(q), ptr<const T>(k), ptr<const T>(v), ptr<T>(out), ptr<T>(lse), T_len, Dh, T(scale), causal);
  });
  CUDA_CHECK_LAUNCH("attention_forward");
}

void CudaBackend::attention_backward(const Tensor& dout, const Tensor& q, const Tensor& k, const Tensor& v,
                                     const Tensor& out, const Tensor& lse, double scale, bool causal, const Tensor& dq,
                                     const Tensor& dk, const Tensor& dv) {
  const int64_t T_len = q.size(2), Dh = q.size(3), rows = q.numel() / std::max<int64_t>(Dh, 1);
  if (q.numel() == 0) return;
  if (q.dtype() == DType::bf16) {
    Tensor dqf = f32_like(dq), dkf = f32_like(dk), dvf = f32_like(dv);
    attention_backward(widened(*this, dout), widened(*this, q), widened(*this, k), widened(*this, v),
                       widened(*this, out), lse, scale, causal, dqf, dkf, dvf);
    copy(dqf, dq);
    copy(dkf, dk);
    copy(dvf, dv);
    return;
  }
  dispatch_float(q.dtype(), "attention_backward", [&](auto tag) {
    using T = decltype(tag);
    DeviceBuffer D(size_t(rows) * sizeof(T));
    const int warps = 8;
    attention_rowdot_kernel<T><<<unsigned((rows + warps - 1) / warps), warps * 32, 0, stream()>>>(
        ptr<const T>(dout), ptr<const T>(out), D.as<T>(), rows, Dh);
    const int64_t heads = rows / std::max<int64_t>(T_len, 1);
    if (use_tiled<T>("attention_backward", Dh, heads)) {
      if constexpr (std::is_same_v<T, float>) {
        const dim3 grid(unsigned((T_len + kTile - 1) / kTile), unsigned(heads));
        dispatch_dmax(Dh, [&](auto dmax) {
          constexpr int DM = decltype(dmax)::value;
          launch_tiled("attention_backward", attention_backward_dkv_tiled_kernel<T, DM>, grid,
                       tiled_smem(Dh, 4, 2, 2, sizeof(T)), ptr<const T>(q), ptr<const T>(k), ptr<const T>(v),
                       ptr<const T>(dout), ptr<const T>(lse), D.as<const T>(), ptr<T>(dk), ptr<T>(dv), T_len,
                       int(Dh), T(scale), causal);
          launch_tiled("attention_backward", attention_backward_dq_tiled_kernel<T, DM>, grid,
                       tiled_smem(Dh, 4, 1, 0, sizeof(T)), ptr<const T>(q), ptr<const T>(k), ptr<const T>(v),
                       ptr<const T>(dout), ptr<const T>(lse), D.as<const T>(), ptr<T>(dq), T_len, int(Dh),
                       T(scale), causal);
        });
      }
      return;
    }
    const size_t smem_dq = attention_smem("attention_backward", Dh, 3, 1, sizeof(T));
    const size_t smem_dkv = attention_smem("attention_backward", Dh, 4, 2, sizeof(T));
    attention_backward_dq_kernel<T><<<grid_x(rows, "attention_backward"), kAttnThreads, smem_dq, stream()>>>(
        ptr<const T>(q), ptr<const T>(k), ptr<const T>(v), ptr<const T>(dout), ptr<const T>(lse), D.as<const T>(),
        ptr<T>(dq), T_len, Dh, T(scale), causal);
    attention_backward_dkv_kernel<T><<<grid_x(rows, "attention_backward"), kAttnThreads, smem_dkv, stream()>>>(
        ptr<const T>(q), ptr<const T>(k), ptr<const T>(v), ptr<const T>(dout), ptr<const T>(lse), D.as<const T>(),
        ptr<T>(dk), ptr<T>(dv), T_len, Dh, T(scale), causal);
  });
  CUDA_CHECK_LAUNCH("attention_backward");
}

}  // namespace mg::cuda
