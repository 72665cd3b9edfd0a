#pragma once
// Helpers shared by the .cu kernel files: launch geometry, dtype dispatch to device types, the
// bf16 conversion (the same round-to-nearest-even rule as core/dtype.h, so CPU and CUDA casts
// agree bit for bit), strided indexing of up to kMaxDims dims, and warp/block reductions.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <type_traits>

#include "core/dtype_dispatch.h"
#include "core/error.h"
#include "core/tensor.h"
#include "cuda/cuda_allocator.h"
#include "cuda/cuda_context.h"
#include "cuda/cuda_errors.h"

namespace mg::cuda {

using bf16_t = __nv_bfloat16;
constexpr int kThreads = 256;

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, not one per element.
inline unsigned grid_for(int64_t n, int threads = kThreads) {
  const int64_t blocks = (n + threads - 1) / threads;
  const int64_t cap = int64_t(multiprocessor_count()) * (2048 / threads) * 4;
  return unsigned(std::max<int64_t>(1, std::min(blocks, cap)));
}

// A launch with one block per item along the grid's x dimension: CUDA allows at most 2^31 - 1
// there, and a larger count cast to unsigned would silently skip items, so it is refused by name.
inline unsigned grid_x(int64_t blocks, const char* op) {
  MG_CHECK(blocks <= int64_t(2147483647), "cuda ", op, ": ", blocks,
           " rows need more blocks than one launch has (2^31 - 1); split the tensor");
  return unsigned(blocks);
}

#define MG_GRID_STRIDE(i, n)                                                        \
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < (n);         \
       i += int64_t(gridDim.x) * blockDim.x)

template <class T>
inline T* ptr(const Tensor& t) {
  return static_cast<T*>(t.raw_data());
}
template <class T>
inline T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

// dispatch_dtype(dt, op, f): f with a value of the device type that stores dt; dispatch_float:
// f32 or f64 only (core/dtype_dispatch.h).
inline constexpr StoredTypeDispatch<bf16_t> dispatch_dtype{"cuda"};
inline constexpr FloatDispatch dispatch_float{"cuda"};

// f32, f64, or bf16 (whose arithmetic runs in float: see compute_t).
template <class F>
inline void dispatch_float_bf16(DType dt, const char* op, F&& f) {
  if (dt == DType::bf16) return f(bf16_t{});
  dispatch_float(dt, op, static_cast<F&&>(f));
}

// The type arithmetic on T runs in: float for bf16 (widened exactly, rounded once on the way out,
// as the CPU backend does), T itself otherwise.
template <class T>
using compute_t = std::conditional_t<std::is_same_v<T, bf16_t>, float, T>;

// float -> bf16 exactly as core/dtype.h: round to nearest even, NaN stays a quiet NaN.
__device__ __forceinline__ bf16_t float_to_bf16(float f) {
  const uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return __ushort_as_bfloat16(uint16_t((u >> 16) | 0x40u));
  return __ushort_as_bfloat16(uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16));
}

// Value conversion with the CPU backend's rules: bf16 goes through float on either side.
template <class To, class From>
__device__ __forceinline__ To convert(From v) {
  if constexpr (std::is_same_v<To, From>) return v;
  else if constexpr (std::is_same_v<To, bf16_t>) return float_to_bf16(float(v));
  else if constexpr (std::is_same_v<From, bf16_t>) return To(__bfloat162float(v));
  else return To(v);
}

// Offsets of element i (row-major over a shape) in N operands with their own strides. Built on
// the host with size-1 dims dropped and dims contiguous for every operand merged, then passed to
// kernels by value.
template <int N>
struct StridedIndexer {
  int nd = 0;
  bool dense = false;  // one dim, stride 1 everywhere: offsets are i
  int64_t shape[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  __device__ __forceinline__ void offsets(int64_t i, int64_t (&off)[N]) const {
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] = 0;
    if (dense) {
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] = i;
      return;
    }
    for (int d = nd - 1; d > 0; --d) {
      const int64_t q = i / shape[d], r = i - q * shape[d];
      i = q;
#pragma unroll
      for (int k = 0; k < N; ++k) off[k] += r * strides[k][d];
    }
#pragma unroll
    for (int k = 0; k < N; ++k) off[k] += i * strides[k][0];
  }
};

template <int N>
StridedIndexer<N> make_indexer(const Shape& shape, const std::array<const Shape*, N>& strides) {
  StridedIndexer<N> L;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (L.nd > 0) {
      bool merge = true;
      for (int k = 0; k < N; ++k) merge = merge && L.strides[k][L.nd - 1] == (*strides[k])[d] * shape[d];
      if (merge) {
        L.shape[L.nd - 1] *= shape[d];
        for (int k = 0; k < N; ++k) L.strides[k][L.nd - 1] = (*strides[k])[d];
        continue;
      }
    }
    L.shape[L.nd] = shape[d];
    for (int k = 0; k < N; ++k) L.strides[k][L.nd] = (*strides[k])[d];
    ++L.nd;
  }
  if (L.nd == 0) {
    L.nd = 1;
    L.shape[0] = 1;
    for (int k = 0; k < N; ++k) L.strides[k][0] = 1;
  }
  L.dense = L.nd == 1;
  for (int k = 0; k < N; ++k) L.dense = L.dense && L.strides[k][0] == 1;
  return L;
}

// A scratch device buffer from the caching allocator, returned when the owner goes out of scope.
// Work already queued on the stream may still read it then: the block's next user queues after it.
struct DeviceBuffer {
  void* p = nullptr;
  explicit DeviceBuffer(size_t nbytes) : p(device_allocate(nbytes)) {}
  ~DeviceBuffer() { device_free(p); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T> T* as() const { return static_cast<T*>(p); }
};

// Reductions whose order depends only on the launch geometry, so results are reproducible.
// Every lane ends with the same value (the butterfly combines identical pairs).
template <class T, class Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// blockDim.x must be a multiple of 32 (at most 1024). Every thread gets the result. Safe to call
// repeatedly in one kernel.
template <class T, class Op>
__device__ __forceinline__ T block_reduce(T v, Op op) {
  __shared__ T partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_reduce(v, op);
  __syncthreads();  // an earlier call's readers are done with `partial`
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  T r = partial[0];
  for (int w = 1; w < nwarps; ++w) r = op(r, partial[w]);
  return r;
}

struct SumOp {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const { return a + b; }
};
// max that lets a NaN win, like the CPU reduction.
struct MaxOp {
  template <class T>
  __device__ __forceinline__ T operator()(T a, T b) const { return (b > a || b != b) ? b : a; }
};

// Threads per row for the row-wise kernels (one block per row): a multiple of 32, no more than
// the row needs.
inline int row_threads(int64_t n, int max_threads = 512) {
  int t = 32;
  while (t < max_threads && t < n) t *= 2;
  return t;
}

// x viewed [rows, n] over its last dim (a 0-d tensor is one row of one element), and the launch
// of a row-wise kernel over it for `op` (named when the rows are too many for one grid): one
// block of row_threads(n, max_threads) threads per row.
struct LastDimRows {
  int64_t rows = 0, n = 0;
  const char* op;
  LastDimRows(const Tensor& x, const char* op_name) : op(op_name) {
    n = x.dim() ? x.shape().back() : 1;
    rows = n ? x.numel() / n : 0;
  }
  unsigned blocks() const { return grid_x(rows, op); }
  int threads(int max_threads) const { return row_threads(n, max_threads); }
};

// For an f32/f64 x with elements: launch(T{}, rows) with T its type, then the launch checked
// (errors name op). Nothing runs when x has no elements.
template <class F>
void launch_per_row(const Tensor& x, const char* op, F&& launch) {
  const LastDimRows rows(x, op);
  if (rows.rows == 0 || rows.n == 0) return;
  grid_x(rows.rows, op);  // refused before anything is launched
  dispatch_float(x.dtype(), op, [&](auto tag) { launch(tag, rows); });
  CUDA_CHECK_LAUNCH(op);
}

}  // namespace mg::cuda
