// The CUDA backend: memory through the caching allocator, and the generic kernels (fill, copy
// and casts, Philox random numbers identical to the CPU's, elementwise, row reductions,
// indexing). Every launch goes to the backend's one stream. Registration at the bottom.
#include <cstring>
#include <vector>

#include "core/philox.h"
#include "cuda/cuda_allocator.h"
#include "cuda/cuda_backend.h"
#include "cuda/kernel_utils.cuh"

namespace mg::cuda {
namespace {

// ---- fill / copy -------------------------------------------------------------------------------

template <class U>
__global__ void fill_kernel(U* out, StridedIndexer<1> L, int64_t n, U bits) {
  MG_GRID_STRIDE(i, n) {
    int64_t off[1];
    L.offsets(i, off);
    out[off[0]] = bits;
  }
}

// Same-dtype copies move raw words of the element's width.
template <class U>
__global__ void copy_raw_kernel(const U* src, U* dst, StridedIndexer<2> L, int64_t n) {
  MG_GRID_STRIDE(i, n) {
    int64_t off[2];
    L.offsets(i, off);
    dst[off[1]] = src[off[0]];
  }
}

template <class S, class D>
__global__ void cast_kernel(const S* src, D* dst, StridedIndexer<2> L, int64_t n) {
  MG_GRID_STRIDE(i, n) {
    int64_t off[2];
    L.offsets(i, off);
    dst[off[1]] = convert<D>(src[off[0]]);
  }
}

template <class F>
void dispatch_width(size_t width, F&& f) {
  switch (width) {
    case 2: f(uint16_t{}); return;
    case 4: f(uint32_t{}); return;
    case 8: f(uint64_t{}); return;
  }
  throw Error("cuda: unsupported element width " + std::to_string(width));
}

// ---- random ------------------------------------------------------------------------------------
// a + b*u with separate roundings, as the CPU computes it (no fused multiply-add), so uniform
// draws match bit for bit.

template <class T>
__global__ void random_float_kernel(T* out, int64_t n, bool normal, uint64_t seed, uint64_t offset, double a,
                                    double b) {
  const double scale = normal ? b : __dadd_rn(b, -a);
  MG_GRID_STRIDE(i, n) {
    double u;
    if constexpr (std::is_same_v<T, float>)
      u = normal ? philox::normal_f32(seed, offset, uint64_t(i)) : philox::uniform_f32(seed, offset, uint64_t(i));
    else
      u = normal ? philox::normal_f64(seed, offset, uint64_t(i)) : philox::uniform_f64(seed, offset, uint64_t(i));
    out[i] = T(__dadd_rn(a, __dmul_rn(scale, u)));
  }
}

__global__ void randint_kernel(int32_t* out, int64_t n, uint64_t seed, uint64_t offset, int32_t lo, int32_t hi) {
  MG_GRID_STRIDE(i, n) out[i] = philox::randint(seed, offset, uint64_t(i), lo, hi);
}

// ---- elementwise -------------------------------------------------------------------------------
// One kernel per dtype with the op chosen at run time: the switch is uniform across a warp and
// costs nothing next to the memory traffic, and it keeps the number of instantiations small.

template <class T>
__device__ __forceinline__ T apply_unary(UnaryOp op, T v, T al) {
  switch (op) {
    case UnaryOp::neg: return -v;
    case UnaryOp::exp: return exp(v);
    case UnaryOp::log: return log(v);
    case UnaryOp::sqrt: return sqrt(v);
    case UnaryOp::rsqrt: return T(1) / sqrt(v);
    case UnaryOp::abs: return fabs(v);
    case UnaryOp::tanh: return tanh(v);
    case UnaryOp::sign: return T((v > T(0)) - (v < T(0)));
    case UnaryOp::pow_scalar: return pow(v, al);
    case UnaryOp::add_scalar: return v + al;
    case UnaryOp::mul_scalar: return v * al;
    case UnaryOp::rsub_scalar: return al - v;
  }
  return v;
}

template <class T>
__global__ void unary_kernel(UnaryOp op, const T* x, T* out, StridedIndexer<2> L, int64_t n, T alpha) {
  MG_GRID_STRIDE(i, n) {
    int64_t off[2];
    L.offsets(i, off);
    out[off[1]] = apply_unary(op, x[off[0]], alpha);
  }
}

template <class T>
__device__ __forceinline__ T apply_binary(BinaryOp op, T x, T y) {
  switch (op) {
    case BinaryOp::add: return x + y;
    case BinaryOp::sub: return x - y;
    case BinaryOp::mul: return x * y;
    case BinaryOp::div: return x / y;
    case BinaryOp::eq: return T(x == y);
    case BinaryOp::maximum: return x > y ? x : y;
  }
  return x;
}

// TB: b's storage type, T or bf16 (autocast's f32 + bf16 residual add, b widened exactly).
template <class T, class TB = T>
__global__ void binary_kernel(BinaryOp op, const T* a, const TB* b, T* out, StridedIndexer<3> L, int64_t n) {
  using C = compute_t<T>;
  MG_GRID_STRIDE(i, n) {
    int64_t off[3];
    L.offsets(i, off);
    out[off[2]] = convert<T>(apply_binary<C>(op, convert<C>(a[off[0]]), convert<C>(b[off[1]])));
  }
}

// ---- row reductions ----------------------------------------------------------------------------
// Sums accumulate in f64 (as on the CPU); the combination order is fixed by the row length only.

constexpr int kWarpRowsMax = 256;  // rows up to this long get one warp, longer ones a block

template <class T>
__global__ void reduce_rows_warp_kernel(bool is_max, const T* x, T* out, int64_t rows, int64_t n) {
  const int lane = threadIdx.x & 31;
  const int64_t row = int64_t(blockIdx.x) * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (row >= rows) return;  // whole warps leave together
  const T* r = x + row * n;
  if (is_max) {
    T m = T(-INFINITY);
    for (int64_t i = lane; i < n; i += 32) m = MaxOp()(m, r[i]);
    m = warp_reduce(m, MaxOp());
    if (lane == 0) out[row] = m;
  } else {
    double s = 0;
    for (int64_t i = lane; i < n; i += 32) s += double(r[i]);
    s = warp_reduce(s, SumOp());
    if (lane == 0) out[row] = T(s);
  }
}

template <class T>
__global__ void reduce_rows_block_kernel(bool is_max, const T* x, T* out, int64_t n) {
  const T* r = x + int64_t(blockIdx.x) * n;
  if (is_max) {
    T m = T(-INFINITY);
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = MaxOp()(m, r[i]);
    m = block_reduce(m, MaxOp());
    if (threadIdx.x == 0) out[blockIdx.x] = m;
  } else {
    double s = 0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += double(r[i]);
    s = block_reduce(s, SumOp());
    if (threadIdx.x == 0) out[blockIdx.x] = T(s);
  }
}

// A single long row: blocks reduce slices into partials (f64), one block sums the partials.
template <class T>
__global__ void sum_partials_kernel(const T* x, double* partial, int64_t n, int64_t chunk) {
  const int64_t begin = int64_t(blockIdx.x) * chunk, end = min(n, begin + chunk);
  double s = 0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) s += double(x[i]);
  s = block_reduce(s, SumOp());
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

template <class T>
__global__ void sum_final_kernel(const double* partial, T* out, int64_t count) {
  double s = 0;
  for (int64_t i = threadIdx.x; i < count; i += blockDim.x) s += partial[i];
  s = block_reduce(s, SumOp());
  if (threadIdx.x == 0) out[0] = T(s);
}

// ---- indexing ----------------------------------------------------------------------------------

template <class U>
__global__ void index_select_kernel(const U* x, const int32_t* idx, U* out, int64_t k, int64_t n, int64_t inner,
                                    int64_t total) {
  MG_GRID_STRIDE(i, total) {
    const int64_t c = i % inner, aj = i / inner, j = aj % k, a = aj / k;
    out[i] = x[(a * n + idx[j]) * inner + c];
  }
}

// One thread per (outer, distinct target row, column) adds that row's sources in index order, so
// repeated indices accumulate without atomics and in the CPU's order (same bits).
template <class T>
__global__ void index_add_kernel(T* out, const T* src, const int32_t* rows, const int32_t* starts,
                                 const int32_t* positions, int64_t n_rows, int64_t n, int64_t k, int64_t inner,
                                 int64_t total) {
  MG_GRID_STRIDE(i, total) {
    const int64_t c = i % inner, au = i / inner, u = au % n_rows, a = au / n_rows;
    T* dst = out + (a * n + rows[u]) * inner + c;
    const T* s = src + a * k * inner + c;
    T acc = *dst;
    for (int32_t p = starts[u]; p < starts[u + 1]; ++p) acc += s[int64_t(positions[p]) * inner];
    *dst = acc;
  }
}

void outer_inner(const Shape& shape, int64_t dim, int64_t& outer, int64_t& inner) {
  outer = inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= shape[size_t(d)];
  for (int64_t d = dim + 1; d < int64_t(shape.size()); ++d) inner *= shape[size_t(d)];
}

// Brings the index list to the host and checks it as the CPU backend does (same message).
std::vector<int32_t> checked_indices(const char* op, const Tensor& idx, int64_t n) {
  std::vector<int32_t> h(size_t(idx.numel()));
  if (!h.empty()) {
    CUDA_CHECK(cudaMemcpyAsync(h.data(), idx.raw_data(), h.size() * sizeof(int32_t), cudaMemcpyDeviceToHost,
                               stream()),
               op);
    sync_stream(op);
  }
  for (size_t j = 0; j < h.size(); ++j)
    MG_CHECK(h[j] >= 0 && h[j] < n, op, ": index ", h[j], " at position ", j, " out of range [0, ", n, ")");
  return h;
}

}  // namespace

const char* CudaBackend::name() const { return "cuda"; }

void* CudaBackend::allocate(size_t nbytes) { return device_allocate(nbytes); }
MemoryStats CudaBackend::memory_stats() const {
  const AllocatorStats s = allocator_stats();
  return MemoryStats{s.bytes_in_use, s.peak_bytes_in_use, s.bytes_cached};
}
void CudaBackend::reset_peak_memory() { reset_peak_stats(); }
void CudaBackend::deallocate(void* ptr, size_t) { device_free(ptr); }

void CudaBackend::copy_from_host(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, stream()), "copy_from_host");
  sync_stream("copy_from_host");
}

void CudaBackend::copy_to_host(void* dst, const void* src, size_t nbytes) {
  if (nbytes == 0) return;
  CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, stream()), "copy_to_host");
  sync_stream("copy_to_host");
}

void CudaBackend::synchronize() { sync_stream("synchronize"); }

void CudaBackend::fill(const Tensor& out, double value) {
  const int64_t n = out.numel();
  if (n == 0) return;
  // The bit pattern is made on the host with the CPU's conversion rules.
  uint64_t bits = 0;
  switch (out.dtype()) {
    case DType::f32: { float v = float(value); std::memcpy(&bits, &v, 4); break; }
    case DType::f64: std::memcpy(&bits, &value, 8); break;
    case DType::i32: { int32_t v = int32_t(value); std::memcpy(&bits, &v, 4); break; }
    case DType::bf16: bits = bf16(float(value)).bits; break;
  }
  const auto L = make_indexer<1>(out.shape(), {&out.strides()});
  dispatch_width(dtype_size(out.dtype()), [&](auto tag) {
    using U = decltype(tag);
    fill_kernel<U><<<grid_for(n), kThreads, 0, stream()>>>(static_cast<U*>(out.raw_data()), L, n, U(bits));
  });
  CUDA_CHECK_LAUNCH("fill");
}

void CudaBackend::copy(const Tensor& src, const Tensor& dst) {
  const int64_t n = src.numel();
  if (n == 0) return;
  if (src.dtype() == dst.dtype()) {
    if (src.is_contiguous() && dst.is_contiguous()) {
      CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), size_t(n) * dtype_size(src.dtype()),
                                 cudaMemcpyDeviceToDevice, stream()),
                 "copy");
      return;
    }
    const auto L = make_indexer<2>(src.shape(), {&src.strides(), &dst.strides()});
    dispatch_width(dtype_size(src.dtype()), [&](auto tag) {
      using U = decltype(tag);
      copy_raw_kernel<U><<<grid_for(n), kThreads, 0, stream()>>>(static_cast<const U*>(src.raw_data()),
                                                                  static_cast<U*>(dst.raw_data()), L, n);
    });
    CUDA_CHECK_LAUNCH("copy");
    return;
  }
  const auto L = make_indexer<2>(src.shape(), {&src.strides(), &dst.strides()});
  dispatch_dtype(src.dtype(), "copy", [&](auto stag) {
    using S = decltype(stag);
    dispatch_dtype(dst.dtype(), "copy", [&](auto dtag) {
      using D = decltype(dtag);
      if constexpr (!std::is_same_v<S, D>)
        cast_kernel<S, D><<<grid_for(n), kThreads, 0, stream()>>>(ptr<const S>(src), ptr<D>(dst), L, n);
    });
  });
  CUDA_CHECK_LAUNCH("copy");
}

void CudaBackend::random(const Tensor& out, RandomKind kind, uint64_t seed, uint64_t offset, double a, double b) {
  const int64_t n = out.numel();
  if (n == 0) return;
  if (kind == RandomKind::randint) {
    MG_CHECK(out.dtype() == DType::i32, "cuda random: randint fills i32 tensors, got ", out.desc());
    randint_kernel<<<grid_for(n), kThreads, 0, stream()>>>(ptr<int32_t>(out), n, seed, offset, int32_t(a),
                                                           int32_t(b));
  } else {
    dispatch_float(out.dtype(), "random", [&](auto tag) {
      using T = decltype(tag);
      random_float_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(ptr<T>(out), n, kind == RandomKind::normal,
                                                                     seed, offset, a, b);
    });
  }
  CUDA_CHECK_LAUNCH("random");
}

void CudaBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out, double alpha) {
  const int64_t n = x.numel();
  if (n == 0) return;
  const auto L = make_indexer<2>(x.shape(), {&x.strides(), &out.strides()});
  dispatch_float(x.dtype(), "unary", [&](auto tag) {
    using T = decltype(tag);
    unary_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(op, ptr<const T>(x), ptr<T>(out), L, n, T(alpha));
  });
  CUDA_CHECK_LAUNCH("unary");
}

void CudaBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  const int64_t n = out.numel();
  if (n == 0) return;
  const auto L = make_indexer<3>(out.shape(), {&a.strides(), &b.strides(), &out.strides()});
  if (a.dtype() == DType::f32 && b.dtype() == DType::bf16) {
    MG_CHECK(op == BinaryOp::add && out.dtype() == DType::f32,
             "cuda binary: an f32 and a bf16 operand are taken by add only, into f32; got ", out.desc());
    binary_kernel<float, bf16_t><<<grid_for(n), kThreads, 0, stream()>>>(op, ptr<const float>(a), ptr<const bf16_t>(b),
                                                                        ptr<float>(out), L, n);
    CUDA_CHECK_LAUNCH("binary");
    return;
  }
  dispatch_float_bf16(a.dtype(), "binary", [&](auto tag) {
    using T = decltype(tag);
    binary_kernel<T><<<grid_for(n), kThreads, 0, stream()>>>(op, ptr<const T>(a), ptr<const T>(b), ptr<T>(out),
                                                             L, n);
  });
  CUDA_CHECK_LAUNCH("binary");
}

void CudaBackend::reduce_rows(ReduceOp op, const Tensor& x, const Tensor& out) {
  const int64_t rows = out.numel(), n = rows ? x.numel() / rows : 0;
  if (rows == 0) return;
  const bool is_max = op == ReduceOp::max;
  dispatch_float(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    if (rows == 1 && !is_max && n >= (int64_t(1) << 16)) {
      // One long row (a full-tensor sum): split it over many blocks.
      const int64_t chunk = 8192, count = (n + chunk - 1) / chunk;
      DeviceBuffer partial(size_t(count) * sizeof(double));
      sum_partials_kernel<T><<<unsigned(count), 256, 0, stream()>>>(ptr<const T>(x), partial.as<double>(), n,
                                                                   chunk);
      sum_final_kernel<T><<<1, 1024, 0, stream()>>>(partial.as<double>(), ptr<T>(out), count);
    } else if (n <= kWarpRowsMax) {
      const int warps = 8;
      const unsigned blocks = unsigned((rows + warps - 1) / warps);
      reduce_rows_warp_kernel<T><<<blocks, warps * 32, 0, stream()>>>(is_max, ptr<const T>(x), ptr<T>(out), rows,
                                                                      n);
    } else {
      reduce_rows_block_kernel<T><<<grid_x(rows, "reduce_rows"), row_threads(n), 0, stream()>>>(is_max, ptr<const T>(x),
                                                                                  ptr<T>(out), n);
    }
  });
  CUDA_CHECK_LAUNCH("reduce");
}

void CudaBackend::index_select(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) {
  const int64_t n = x.shape()[size_t(dim)], k = idx.numel();
  int64_t outer, inner;
  outer_inner(x.shape(), dim, outer, inner);
  checked_indices("index_select", idx, n);
  const int64_t total = outer * k * inner;
  if (total == 0) return;
  dispatch_width(dtype_size(x.dtype()), [&](auto tag) {
    using U = decltype(tag);
    index_select_kernel<U><<<grid_for(total), kThreads, 0, stream()>>>(
        static_cast<const U*>(x.raw_data()), ptr<const int32_t>(idx), static_cast<U*>(out.raw_data()), k, n, inner,
        total);
  });
  CUDA_CHECK_LAUNCH("index_select");
}

void CudaBackend::index_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  const int64_t n = out.shape()[size_t(dim)], k = idx.numel();
  int64_t outer, inner;
  outer_inner(out.shape(), dim, outer, inner);
  const std::vector<int32_t> h = checked_indices("index_add", idx, n);
  if (outer * k * inner == 0) return;
  // Group source positions by target row with a stable counting sort on the host (the list is
  // short: one entry per token), giving [rows | starts | positions] for the kernel.
  std::vector<int32_t> count(size_t(n), 0);
  for (int32_t v : h) ++count[size_t(v)];
  std::vector<int32_t> plan;
  plan.reserve(size_t(2 * k + 1));
  std::vector<int32_t> first(size_t(n), -1);
  int32_t n_rows = 0;
  for (int64_t r = 0; r < n; ++r)
    if (count[size_t(r)]) ++n_rows;
  plan.resize(size_t(n_rows) * 2 + 1 + size_t(k));
  int32_t* rows = plan.data();
  int32_t* starts = rows + n_rows;
  int32_t* positions = starts + n_rows + 1;
  int32_t u = 0, at = 0;
  for (int64_t r = 0; r < n; ++r) {
    if (!count[size_t(r)]) continue;
    rows[u] = int32_t(r);
    starts[u] = at;
    first[size_t(r)] = at;
    at += count[size_t(r)];
    ++u;
  }
  starts[n_rows] = at;
  for (int64_t j = 0; j < k; ++j) positions[first[size_t(h[size_t(j)])]++] = int32_t(j);

  // A copy from pageable memory returns once the data is staged, so `plan` may be freed after it.
  DeviceBuffer dplan(plan.size() * sizeof(int32_t));
  CUDA_CHECK(cudaMemcpyAsync(dplan.p, plan.data(), plan.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream()),
             "index_add");
  const int32_t* drows = dplan.as<int32_t>();
  const int64_t total = outer * n_rows * inner;
  dispatch_float(out.dtype(), "index_add", [&](auto tag) {
    using T = decltype(tag);
    index_add_kernel<T><<<grid_for(total), kThreads, 0, stream()>>>(
        ptr<T>(out), ptr<const T>(src), drows, drows + n_rows, drows + 2 * n_rows + 1, n_rows, n, k, inner, total);
  });
  CUDA_CHECK_LAUNCH("index_add");
}

namespace {
// Registers the backend. A machine without a usable GPU (or driver) keeps it registered but
// unavailable, with CUDA's reason, so CPU-only use is unaffected and CUDA use fails clearly.
// cudaGetDeviceCount creates no context.
struct Registrar {
  Registrar() {
    static CudaBackend backend;
    register_backend(DeviceType::CUDA, &backend);
    int count = 0;
    const cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      const std::string why = std::string("CUDA reports ") + cudaGetErrorName(err) + ": " + cudaGetErrorString(err);
      set_backend_unavailable(DeviceType::CUDA, why.c_str());
    } else if (count == 0) {
      set_backend_unavailable(DeviceType::CUDA, "CUDA found no device");
    }
  }
} registrar;
}  // namespace

}  // namespace mg::cuda
