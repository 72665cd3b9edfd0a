// The CPU backend: OpenMP-threaded loops over strided memory, the library's own GEMM
// (cpu/gemm.h), Philox random numbers identical to the CUDA backend's.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "core/backend.h"
#include "core/philox.h"
#include "cpu/cpu_allocator.h"
#include "cpu/bf16_math.h"
#include "cpu/cpu_backend.h"
#include "cpu/dispatch.h"
#include "cpu/gemm.h"
#include "cpu/isa_dispatch.h"
#include "cpu/parallel.h"
#include "cpu/strided.h"

namespace mg::cpu {
namespace {

using u32_alias = uint32_t __attribute__((may_alias));
using u16_alias = uint16_t __attribute__((may_alias));

inline void cast_f32_bf16(const float* s, bf16* d, int64_t b, int64_t e) {
  u16_alias* du = reinterpret_cast<u16_alias*>(d);
#pragma omp simd
  for (int64_t i = b; i < e; ++i) du[i] = bf16_bits_rne(s[i]);
}

inline void cast_bf16_f32(const bf16* s, float* d, int64_t b, int64_t e) {
  const u16_alias* su = reinterpret_cast<const u16_alias*>(s);
  u32_alias* du = reinterpret_cast<u32_alias*>(d);
#pragma omp simd
  for (int64_t i = b; i < e; ++i) du[i] = uint32_t(su[i]) << 16;
}

// f(s, d, n, s_stride, d_stride) for each run of the walk over src's shape: s and d point at the
// run's first elements of src (type S) and dst (type D), strides in elements.
template <class S, class D, class F>
void for_each_run(const Tensor& src, const Tensor& dst, F&& f) {
  const S* sp = ptr<S>(src);
  D* dp = ptr<D>(dst);
  for_each_row<2>(src.shape(), {src.strides(), dst.strides()},
                  [&](std::array<int64_t, 2> off, int64_t n, std::array<int64_t, 2> st) {
                    f(sp + off[0], dp + off[1], n, st[0], st[1]);
                  });
}

template <class T, class Fn>
void unary_loop(const Tensor& x, const Tensor& out, Fn fn) {
  for_each_run<T, T>(x, out, [&](const T* a, T* o, int64_t n, int64_t sa, int64_t so) {
    if (sa == 1 && so == 1) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) o[i] = fn(a[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * so] = fn(a[i * sa]);
    }
  });
}

// TB: b's storage type, T or bf16 (widened exactly on load: autocast's f32 + bf16 residual add).
template <class T, class Fn, class TB = T>
void binary_loop(const Tensor& a, const Tensor& b, const Tensor& out, Fn fn) {
  const T* ap = ptr<T>(a);
  const TB* bp = ptr<TB>(b);
  T* op = ptr<T>(out);
  for_each_row<3>(out.shape(), {a.strides(), b.strides(), out.strides()},
                  [&](std::array<int64_t, 3> off, int64_t n, std::array<int64_t, 3> st) {
                    const T* x = ap + off[0];
                    const TB* y = bp + off[1];
                    T* o = op + off[2];
                    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
#pragma omp simd
                      for (int64_t i = 0; i < n; ++i) o[i] = fn(x[i], T(widen(y[i])));
                    } else if (st[0] == 1 && st[1] == 0 && st[2] == 1) {
                      const T yv = T(widen(*y));
#pragma omp simd
                      for (int64_t i = 0; i < n; ++i) o[i] = fn(x[i], yv);
                    } else if (st[0] == 0 && st[1] == 1 && st[2] == 1) {
                      const T xv = *x;
#pragma omp simd
                      for (int64_t i = 0; i < n; ++i) o[i] = fn(xv, T(widen(y[i])));
                    } else {
                      for (int64_t i = 0; i < n; ++i) o[i * st[2]] = fn(x[i * st[0]], T(widen(y[i * st[1]])));
                    }
                  });
}

// The native bf16 kernel where the CPU has AVX512_BF16 (cpu/gemm.h). Elsewhere the bf16 operands
// are widened to f32 (exact), then our SGEMM: f32 accumulation either way, as cuBLAS's bf16 GEMM
// with CUBLAS_COMPUTE_32F. Each distinct matrix of an operand (one when its batch stride is 0) is
// converted once into a dense buffer. C is f32.
struct WidenedOperand {
  std::vector<float> buf;
  int64_t ld = 0, stride = 0;
  WidenedOperand(const void* p, int64_t rows, int64_t cols, int64_t ld_in, int64_t stride_in, int64_t batch) {
    const int64_t count = stride_in == 0 ? 1 : batch;
    ld = std::max<int64_t>(cols, 1);
    stride = stride_in == 0 ? 0 : rows * ld;
    buf.resize(size_t(count * rows * ld));
    const uint16_t* src = static_cast<const uint16_t*>(p);
#pragma omp parallel for collapse(2) if (count * rows * cols >= kParallelGrain)
    for (int64_t b = 0; b < count; ++b)
      for (int64_t r = 0; r < rows; ++r) {
        const bf16* s = reinterpret_cast<const bf16*>(src + b * stride_in + r * ld_in);
        cast_bf16_f32(s, buf.data() + b * rows * ld + r * ld, 0, cols);
      }
  }
};

GemmEpilogue epilogue_of(const GemmArgs& g) {
  return {.bias = static_cast<const float*>(g.bias), .D = static_cast<uint16_t*>(g.D), .ldd = g.ldd,
          .stride_d = g.stride_d};
}

void gemm_bf16(const GemmArgs& g) {
  if (g.M == 0 || g.N == 0 || g.batch == 0) return;
  const auto* A = static_cast<const uint16_t*>(g.A);
  const auto* B = static_cast<const uint16_t*>(g.B);
  auto* C = static_cast<float*>(g.C);
  if (bf16gemm_native()) {
    bf16gemm_batched(g.trans_a, g.trans_b, g.M, g.N, g.K, float(g.alpha), A, g.lda, g.stride_a, B, g.ldb, g.stride_b,
                     float(g.beta), C, g.ldc, g.stride_c, g.batch, epilogue_of(g), g.tri);
    return;
  }
  // A is stored [M, K] ([K, M] when trans_a), B [K, N] ([N, K] when trans_b).
  const WidenedOperand a(A, g.trans_a ? g.K : g.M, g.trans_a ? g.M : g.K, g.lda, g.stride_a, g.batch);
  const WidenedOperand b(B, g.trans_b ? g.N : g.K, g.trans_b ? g.K : g.N, g.ldb, g.stride_b, g.batch);
  sgemm_batched(g.trans_a, g.trans_b, g.M, g.N, g.K, float(g.alpha), a.buf.data(), a.ld, a.stride, b.buf.data(), b.ld,
                b.stride, float(g.beta), C, g.ldc, g.stride_c, g.batch, epilogue_of(g), g.tri);
}

// f64 has no tiled epilogue (it serves gradcheck and audits): the bias is added in a pass after.
void add_bias_f64(const GemmArgs& g) {
  const double* bias = static_cast<const double*>(g.bias);
  double* C = static_cast<double*>(g.C);
  for (int64_t b = 0; b < g.batch; ++b)
    for (int64_t i = 0; i < g.M; ++i) {
      double* c = C + b * g.stride_c + i * g.ldc;
      for (int64_t j = 0; j < g.N; ++j) c[j] += bias[j];
    }
}

}  // namespace

const char* CpuBackend::name() const { return "cpu"; }
void CpuBackend::synchronize() {}  // every CPU kernel has finished when it returns

void* CpuBackend::allocate(size_t nbytes) { return host_allocate(nbytes); }
MemoryStats CpuBackend::memory_stats() const {
  const HostCacheStats s = host_cache_stats();
  return MemoryStats{s.bytes_in_use, s.peak_bytes_in_use, s.bytes_cached};
}
void CpuBackend::reset_peak_memory() { host_reset_peak(); }
void CpuBackend::deallocate(void* p, size_t nbytes) { host_free(p, nbytes); }
void CpuBackend::copy_from_host(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }
void CpuBackend::copy_to_host(void* dst, const void* src, size_t n) { std::memcpy(dst, src, n); }

void CpuBackend::fill(const Tensor& out, double value) {
  dispatch_dtype(out.dtype(), "fill", [&](auto tag) {
    using T = decltype(tag);
    const T v = cast_value<T>(value);
    T* o = ptr<T>(out);
    for_each_row<1>(out.shape(), {out.strides()}, [&](std::array<int64_t, 1> off, int64_t n, std::array<int64_t, 1> st) {
      for (int64_t i = 0; i < n; ++i) o[off[0] + i * st[0]] = v;
    });
  });
}

void CpuBackend::copy(const Tensor& src, const Tensor& dst) {
  dispatch_dtype(src.dtype(), "copy", [&](auto stag) {
    using S = decltype(stag);
    dispatch_dtype(dst.dtype(), "copy", [&](auto dtag) {
      using D = decltype(dtag);
      for_each_run<S, D>(src, dst, [&](const S* s, D* d, int64_t n, int64_t ss, int64_t ds) {
        const bool dense = ss == 1 && ds == 1;
        if constexpr (std::is_same_v<S, D>) {
          if (dense) {
            std::memcpy(d, s, size_t(n) * sizeof(S));
            return;
          }
        }
        // The autocast casts: vectorised bit manipulation, same bits as bf16(float).
        if constexpr (std::is_same_v<S, float> && std::is_same_v<D, bf16>) {
          if (dense) {
            run_isa([&](int64_t b, int64_t e) { cast_f32_bf16(s, d, b, e); }, 0, n);
            return;
          }
        }
        if constexpr (std::is_same_v<S, bf16> && std::is_same_v<D, float>) {
          if (dense) {
            run_isa([&](int64_t b, int64_t e) { cast_bf16_f32(s, d, b, e); }, 0, n);
            return;
          }
        }
        for (int64_t i = 0; i < n; ++i) d[i * ds] = cast_value<D>(s[i * ss]);
      });
    });
  });
}

void CpuBackend::random(const Tensor& out, RandomKind kind, uint64_t seed, uint64_t offset, double a, double b) {
  const int64_t n = out.numel();
  if (kind == RandomKind::randint) {
    int32_t* o = ptr<int32_t>(out);
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) o[i] = philox::randint(seed, offset, uint64_t(i), int32_t(a), int32_t(b));
    return;
  }
  dispatch_float(out.dtype(), "random", [&](auto tag) {
    using T = decltype(tag);
    T* o = ptr<T>(out);
#pragma omp parallel for if (n > kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      double u;
      if constexpr (std::is_same_v<T, float>)
        u = kind == RandomKind::normal ? philox::normal_f32(seed, offset, uint64_t(i))
                                       : philox::uniform_f32(seed, offset, uint64_t(i));
      else
        u = kind == RandomKind::normal ? philox::normal_f64(seed, offset, uint64_t(i))
                                       : philox::uniform_f64(seed, offset, uint64_t(i));
      o[i] = kind == RandomKind::normal ? T(a + b * u) : T(a + (b - a) * u);
    }
  });
}

void CpuBackend::unary(UnaryOp op, const Tensor& x, const Tensor& out, double alpha) {
  dispatch_float(x.dtype(), "unary", [&](auto tag) {
    using T = decltype(tag);
    const T al = T(alpha);
    switch (op) {
      case UnaryOp::neg: return unary_loop<T>(x, out, [](T v) { return -v; });
      case UnaryOp::exp: return unary_loop<T>(x, out, [](T v) { return std::exp(v); });
      case UnaryOp::log: return unary_loop<T>(x, out, [](T v) { return std::log(v); });
      case UnaryOp::sqrt: return unary_loop<T>(x, out, [](T v) { return std::sqrt(v); });
      case UnaryOp::rsqrt: return unary_loop<T>(x, out, [](T v) { return T(1) / std::sqrt(v); });
      case UnaryOp::abs: return unary_loop<T>(x, out, [](T v) { return std::abs(v); });
      case UnaryOp::tanh: return unary_loop<T>(x, out, [](T v) { return std::tanh(v); });
      case UnaryOp::sign: return unary_loop<T>(x, out, [](T v) { return T((v > 0) - (v < 0)); });
      case UnaryOp::pow_scalar: return unary_loop<T>(x, out, [al](T v) { return std::pow(v, al); });
      case UnaryOp::add_scalar: return unary_loop<T>(x, out, [al](T v) { return v + al; });
      case UnaryOp::mul_scalar: return unary_loop<T>(x, out, [al](T v) { return v * al; });
      case UnaryOp::rsub_scalar: return unary_loop<T>(x, out, [al](T v) { return al - v; });
    }
    throw Error("cpu unary: unknown op");
  });
}

void CpuBackend::binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  if (a.dtype() == DType::f32 && b.dtype() == DType::bf16) {
    MG_CHECK(op == BinaryOp::add && out.dtype() == DType::f32,
             "cpu binary: an f32 and a bf16 operand are taken by add only, into f32; got ", out.desc());
    auto plus = [](float x, float y) { return x + y; };
    return binary_loop<float, decltype(plus), bf16>(a, b, out, plus);
  }
  if (a.dtype() == DType::bf16) {
    // No bf16 arithmetic: widen, compute in f32, round once (the CUDA kernel gives the same bits).
    // Used for adding bf16 gradients under autocast, so speed is secondary.
    const TensorOptions f32{DType::f32, kCPU, false};
    Tensor af = Tensor::empty(out.shape(), f32), bf = Tensor::empty(out.shape(), f32);
    Tensor of = Tensor::empty(out.shape(), f32);
    copy(a, af);
    copy(b, bf);
    binary(op, af, bf, of);
    copy(of, out);
    return;
  }
  dispatch_float(a.dtype(), "binary", [&](auto tag) {
    using T = decltype(tag);
    switch (op) {
      case BinaryOp::add: return binary_loop<T>(a, b, out, [](T x, T y) { return x + y; });
      case BinaryOp::sub: return binary_loop<T>(a, b, out, [](T x, T y) { return x - y; });
      case BinaryOp::mul: return binary_loop<T>(a, b, out, [](T x, T y) { return x * y; });
      case BinaryOp::div: return binary_loop<T>(a, b, out, [](T x, T y) { return x / y; });
      case BinaryOp::eq: return binary_loop<T>(a, b, out, [](T x, T y) { return T(x == y); });
      case BinaryOp::maximum: return binary_loop<T>(a, b, out, [](T x, T y) { return x > y ? x : y; });
    }
    throw Error("cpu binary: unknown op");
  });
}

void CpuBackend::reduce_rows(ReduceOp op, const Tensor& x, const Tensor& out) {
  dispatch_float(x.dtype(), "reduce", [&](auto tag) {
    using T = decltype(tag);
    const int64_t rows = out.numel(), n = rows ? x.numel() / rows : 0;
    const T* xp = ptr<T>(x);
    T* op_ = ptr<T>(out);
    // f32 sums accumulate in f64: sums over 10^5+ elements stay exact to f32. The loops run in
    // parallel_rows / parallel_elements bodies, compiled for the CPU's best ISA (in a plain OpenMP
    // loop here the f64 sums ran two lanes wide, ~11 GB/s).
    auto sum_range = [](const T* x, int64_t b, int64_t e) __attribute__((always_inline)) {
      double acc = 0;
#pragma omp simd reduction(+ : acc)
      for (int64_t i = b; i < e; ++i) acc += double(x[i]);
      return acc;
    };
    if (rows == 1 && op == ReduceOp::sum) {
      // One partial per thread's contiguous range, added in thread order.
      std::vector<double> part(size_t(omp_get_max_threads()), 0.0);
      parallel_elements(n, [&](int64_t b, int64_t e) __attribute__((always_inline)) {
        part[size_t(omp_get_thread_num())] = sum_range(xp, b, e);
      });
      double acc = 0;
      for (double p : part) acc += p;
      op_[0] = T(acc);
      return;
    }
    parallel_rows(rows, rows * n, [&](int64_t r0, int64_t r1) __attribute__((always_inline)) {
      for (int64_t r = r0; r < r1; ++r) {
        const T* x = xp + r * n;
        if (op == ReduceOp::sum) {
          op_[r] = T(sum_range(x, 0, n));
          continue;
        }
        T m = n ? x[0] : -INFINITY;
        for (int64_t i = 1; i < n; ++i) m = (x[i] > m || std::isnan(x[i])) ? x[i] : m;
        op_[r] = m;
      }
    });
  });
}

void CpuBackend::gemm(const GemmArgs& g) {
  MG_CHECK(!g.D || g.dtype == DType::bf16, "cpu gemm: a bf16 output D needs bf16 operands, got ", dtype_name(g.dtype));
  MG_CHECK(g.C || (g.D && g.beta == 0.0), "cpu gemm: C may be null only with a bf16 output D and beta 0");
  MG_CHECK(!(g.bias || g.D) || !g.C || g.stride_c != 0 || g.batch <= 1,
           "cpu gemm: an epilogue (bias or D) needs one C per batch entry (stride_c != 0)");
  if (g.dtype == DType::f32) {
    sgemm_batched(g.trans_a, g.trans_b, g.M, g.N, g.K, float(g.alpha), static_cast<const float*>(g.A), g.lda,
                  g.stride_a, static_cast<const float*>(g.B), g.ldb, g.stride_b, float(g.beta), static_cast<float*>(g.C),
                  g.ldc, g.stride_c, g.batch, epilogue_of(g), g.tri);
  } else if (g.dtype == DType::f64) {
    dgemm_batched(g.trans_a, g.trans_b, g.M, g.N, g.K, g.alpha, static_cast<const double*>(g.A), g.lda, g.stride_a,
                  static_cast<const double*>(g.B), g.ldb, g.stride_b, g.beta, static_cast<double*>(g.C), g.ldc,
                  g.stride_c, g.batch, g.tri);
    if (g.bias && g.M > 0 && g.N > 0 && g.batch > 0) add_bias_f64(g);
  } else if (g.dtype == DType::bf16)
    gemm_bf16(g);
  else
    throw Error(std::string("cpu gemm: dtype ") + dtype_name(g.dtype) + " not supported (f32, f64 or bf16 expected)");
}

namespace {
// The indexed tensor `t` viewed [outer, n, inner] around `dim`, and the k indices, each checked to
// lie in [0, n).
struct IndexedView {
  int64_t outer = 1, n = 0, inner = 1, k = 0;
  const int32_t* idx = nullptr;
};
IndexedView indexed_view(const char* op, const Tensor& t, int64_t dim, const Tensor& idx) {
  IndexedView v;
  v.n = t.shape()[size_t(dim)];
  v.k = idx.numel();
  for (int64_t d = 0; d < dim; ++d) v.outer *= t.shape()[size_t(d)];
  for (int64_t d = dim + 1; d < t.dim(); ++d) v.inner *= t.shape()[size_t(d)];
  v.idx = ptr<int32_t>(idx);
  for (int64_t j = 0; j < v.k; ++j)
    MG_CHECK(v.idx[j] >= 0 && v.idx[j] < v.n, op, ": index ", v.idx[j], " at position ", j, " out of range [0, ", v.n,
             ")");
  return v;
}
}  // namespace

void CpuBackend::index_select(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& out) {
  const IndexedView v = indexed_view("index_select", x, dim, idx);
  const int64_t outer = v.outer, n = v.n, inner = v.inner, k = v.k;
  const int32_t* ip = v.idx;
  dispatch_dtype(x.dtype(), "index_select", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = ptr<T>(x);
    T* o = ptr<T>(out);
#pragma omp parallel for collapse(2) if (outer * k * inner >= kParallelGrain)
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t j = 0; j < k; ++j)
        std::memcpy(o + (a * k + j) * inner, xp + (a * n + ip[j]) * inner, size_t(inner) * sizeof(T));
  });
}

void CpuBackend::index_add(const Tensor& out, int64_t dim, const Tensor& idx, const Tensor& src) {
  const IndexedView v = indexed_view("index_add", out, dim, idx);
  const int64_t outer = v.outer, n = v.n, inner = v.inner, k = v.k;
  const int32_t* ip = v.idx;
  dispatch_float(out.dtype(), "index_add", [&](auto tag) {
    using T = decltype(tag);
    T* o = ptr<T>(out);
    const T* s = ptr<T>(src);
    // Threads split the (outer, inner) positions, never the index list, so repeated indices
    // accumulate without races and in a fixed order (deterministic sums).
    const int64_t block = 64;
    const int64_t nblk = (inner + block - 1) / block;
#pragma omp parallel for collapse(2) if (outer * k * inner >= kParallelGrain)
    for (int64_t a = 0; a < outer; ++a)
      for (int64_t bi = 0; bi < nblk; ++bi) {
        const int64_t c0 = bi * block, c1 = std::min(inner, c0 + block);
        for (int64_t j = 0; j < k; ++j) {
          T* dst = o + (a * n + ip[j]) * inner;
          const T* sr = s + (a * k + j) * inner;
          for (int64_t c = c0; c < c1; ++c) dst[c] += sr[c];
        }
      }
  });
}

namespace {
struct Registrar {
  Registrar() {
    static CpuBackend backend;
    register_backend(DeviceType::CPU, &backend);
  }
} registrar;

}  // namespace
}  // namespace mg::cpu
