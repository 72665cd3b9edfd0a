// LayerNorm and RMSNorm over the last dim of a contiguous [rows, D] tensor, forward and backward.
//
// Forward is one pass over memory per row (the row is re-read from L1 for the statistics and the
// output). Backward reduces dweight/dbias over rows through per-chunk partial sums: the chunking
// depends only on the row count, never on the thread count, so the sums are bitwise reproducible
// on any number of threads and need no atomics.
//
// Each kernel body is compiled for AVX-512, AVX2+FMA and the baseline ISA and chosen at run time,
// so the library needs no -march flag (the bodies are always_inline, so the wrapper's target
// attribute applies to them).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "cpu/cpu_backend.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"
#include "cpu/row_chunks.h"

namespace mg::cpu {
namespace {

// ---- rows ---------------------------------------------------------------------------------

// The row sum in one fixed order, written out: W lanes (the vector width of the ISA path that
// runs), lane l summing x[l], x[l + W], ...; the last D % W elements go to lane 0; then the lanes
// are added in order. That is exactly what GCC's vectoriser makes of an `omp simd` reduction on
// each path, so the default build's results are unchanged; but the accuracy no longer depends on
// the compiler vectorising: a -O0/-O1 or sanitizer build, where a plain f32 sum of a row with a
// large mean (1e4 + noise) loses the variance, sums in the same order and gets the same bits.
template <int W, class T>
MG_ALWAYS_INLINE T row_sum(const T* x, int64_t D) {
  T lane[W] = {};
  const int64_t full = D - D % W;
  for (int64_t j = 0; j < full; j += W)
    for (int l = 0; l < W; ++l) lane[l] += x[j + l];
  for (int64_t j = full; j < D; ++j) lane[0] += x[j];
  T s = 0;
  for (int l = 0; l < W; ++l) s += lane[l];
  return s;
}

// Lanes of T in the vector registers of the ISA path run_isa runs (the same detect_isa()).
template <class T>
int vector_lanes() {
  static const Isa isa = detect_isa();
  return int((isa == Isa::avx512 ? 64 : isa == Isa::avx2 ? 32 : 16) / sizeof(T));
}

// f(std::integral_constant<int, W>{}) with W = vector_lanes<T>(), for row_sum's lane count.
template <class T, class F>
void with_vector_lanes(const F& f) {
  switch (vector_lanes<T>()) {
    case 16: return f(std::integral_constant<int, 16>{});
    case 8: return f(std::integral_constant<int, 8>{});
    case 4: return f(std::integral_constant<int, 4>{});
    default: return f(std::integral_constant<int, 2>{});
  }
}

// Two-pass mean/variance over a row that is already in cache: exact for rows with a large mean.
template <int W, class T>
MG_ALWAYS_INLINE void layernorm_row(const T* x, const T* w, const T* b, T* y, int64_t D, T eps, T& mean, T& rstd) {
  const T inv_d = T(1) / T(D);
  const T mu = row_sum<W>(x, D) * inv_d;
  T sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t j = 0; j < D; ++j) {
    const T d = x[j] - mu;
    sq += d * d;
  }
  const T rs = T(1) / std::sqrt(sq * inv_d + eps);
#pragma omp simd
  for (int64_t j = 0; j < D; ++j) y[j] = (x[j] - mu) * rs * w[j] + b[j];
  mean = mu;
  rstd = rs;
}

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * w; dw += dy * xhat, db += dy.
template <class T>
MG_ALWAYS_INLINE void layernorm_backward_row(const T* dy, const T* x, const T* w, T mu, T rs, T* dx, T* dw, T* db,
                                             int64_t D) {
  T sg = 0, sgx = 0;
  if (dw) {
#pragma omp simd reduction(+ : sg, sgx)
    for (int64_t j = 0; j < D; ++j) {
      const T xh = (x[j] - mu) * rs;
      const T g = dy[j] * w[j];
      sg += g;
      sgx += g * xh;
      dw[j] += dy[j] * xh;
      db[j] += dy[j];
    }
  } else {
#pragma omp simd reduction(+ : sg, sgx)
    for (int64_t j = 0; j < D; ++j) {
      const T g = dy[j] * w[j];
      sg += g;
      sgx += g * (x[j] - mu) * rs;
    }
  }
  const T inv_d = T(1) / T(D);
  const T a = sg * inv_d, c = sgx * inv_d;
#pragma omp simd
  for (int64_t j = 0; j < D; ++j) dx[j] = rs * (dy[j] * w[j] - a - (x[j] - mu) * rs * c);
}

template <class T>
MG_ALWAYS_INLINE void rmsnorm_row(const T* x, const T* w, T* y, int64_t D, T eps, T& rstd) {
  T sq = 0;
#pragma omp simd reduction(+ : sq)
  for (int64_t j = 0; j < D; ++j) sq += x[j] * x[j];
  const T rs = T(1) / std::sqrt(sq / T(D) + eps);
#pragma omp simd
  for (int64_t j = 0; j < D; ++j) y[j] = x[j] * rs * w[j];
  rstd = rs;
}

// dx = rstd * (g - xhat * mean(g * xhat)) with g = dy * w, xhat = x * rstd; dw += dy * xhat.
template <class T>
MG_ALWAYS_INLINE void rmsnorm_backward_row(const T* dy, const T* x, const T* w, T rs, T* dx, T* dw, int64_t D) {
  T sgx = 0;
  if (dw) {
#pragma omp simd reduction(+ : sgx)
    for (int64_t j = 0; j < D; ++j) {
      const T xh = x[j] * rs;
      sgx += dy[j] * w[j] * xh;
      dw[j] += dy[j] * xh;
    }
  } else {
#pragma omp simd reduction(+ : sgx)
    for (int64_t j = 0; j < D; ++j) sgx += dy[j] * w[j] * x[j] * rs;
  }
  const T c = sgx / T(D);
#pragma omp simd
  for (int64_t j = 0; j < D; ++j) dx[j] = rs * (dy[j] * w[j] - x[j] * rs * c);
}

// ---- helpers ------------------------------------------------------------------------------

// The affine parameters as pointers; an undefined tensor reads as ones (weight) or zeros (bias)
// so the row loops stay branch-free.
template <class T>
const T* param_or(const Tensor& p, int64_t D, T fill, std::vector<T>& buf) {
  if (p.defined()) return ptr<T>(p);
  buf.assign(size_t(D), fill);
  return buf.data();
}

inline int64_t last_dim(const Tensor& x) { return x.dim() ? x.shape().back() : 1; }

}  // namespace

void CpuBackend::layernorm_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps,
                                   const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  dispatch_float(x.dtype(), "layernorm_forward", [&](auto tag) {
    using T = decltype(tag);
    const int64_t D = last_dim(x), rows = D ? x.numel() / D : 0;
    if (rows == 0 || D == 0) return;
    std::vector<T> ones, zeros;
    const T* w = param_or<T>(weight, D, T(1), ones);
    const T* b = param_or<T>(bias, D, T(0), zeros);
    const T* xp = ptr<T>(x);
    T* yp = ptr<T>(y);
    T* mp = ptr<T>(mean);
    T* rp = ptr<T>(rstd);
    const T e = T(eps);
    with_vector_lanes<T>([&](auto lanes) {
      constexpr int W = decltype(lanes)::value;
      parallel_rows(rows, rows * D, [&](int64_t r0, int64_t r1) __attribute__((always_inline)) {
        for (int64_t r = r0; r < r1; ++r) layernorm_row<W>(xp + r * D, w, b, yp + r * D, D, e, mp[r], rp[r]);
      });
    });
  });
}

void CpuBackend::layernorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& mean,
                                    const Tensor& rstd, const Tensor& dx, const Tensor& dweight,
                                    const Tensor& dbias) {
  dispatch_float(x.dtype(), "layernorm_backward", [&](auto tag) {
    using T = decltype(tag);
    const int64_t D = last_dim(x), rows = D ? x.numel() / D : 0;
    if (D == 0) return;
    const bool need_params = dweight.defined() || dbias.defined();
    if (rows == 0) {
      if (dweight.defined()) std::fill_n(ptr<T>(dweight), D, T(0));
      if (dbias.defined()) std::fill_n(ptr<T>(dbias), D, T(0));
      return;
    }
    std::vector<T> ones;
    const T* w = param_or<T>(weight, D, T(1), ones);
    const T *dyp = ptr<T>(dy), *xp = ptr<T>(x), *mp = ptr<T>(mean), *rp = ptr<T>(rstd);
    T* dxp = ptr<T>(dx);
    const int64_t cr = chunk_rows(rows), nchunks = (rows + cr - 1) / cr;
    // Per chunk: [dweight partial | dbias partial].
    std::vector<T> part(need_params ? size_t(nchunks * 2 * D) : 0, T(0));
    parallel_rows(nchunks, rows * D * 3, [&](int64_t c0, int64_t c1) __attribute__((always_inline)) {
      for (int64_t c = c0; c < c1; ++c) {
        T* pw = need_params ? part.data() + c * 2 * D : nullptr;
        T* pb = need_params ? pw + D : nullptr;
        const int64_t r_end = std::min(rows, (c + 1) * cr);
        for (int64_t r = c * cr; r < r_end; ++r)
          layernorm_backward_row(dyp + r * D, xp + r * D, w, mp[r], rp[r], dxp + r * D, pw, pb, D);
      }
    });
    if (dweight.defined()) reduce_chunks(part.data(), nchunks, 2 * D, D, ptr<T>(dweight));
    if (dbias.defined()) reduce_chunks(part.data() + D, nchunks, 2 * D, D, ptr<T>(dbias));
  });
}

void CpuBackend::rmsnorm_forward(const Tensor& x, const Tensor& weight, double eps, const Tensor& y,
                                 const Tensor& rstd) {
  dispatch_float(x.dtype(), "rmsnorm_forward", [&](auto tag) {
    using T = decltype(tag);
    const int64_t D = last_dim(x), rows = D ? x.numel() / D : 0;
    if (rows == 0 || D == 0) return;
    std::vector<T> ones;
    const T* w = param_or<T>(weight, D, T(1), ones);
    const T* xp = ptr<T>(x);
    T* yp = ptr<T>(y);
    T* rp = ptr<T>(rstd);
    const T e = T(eps);
    parallel_rows(rows, rows * D, [&](int64_t r0, int64_t r1) __attribute__((always_inline)) {
      for (int64_t r = r0; r < r1; ++r) rmsnorm_row(xp + r * D, w, yp + r * D, D, e, rp[r]);
    });
  });
}

void CpuBackend::rmsnorm_backward(const Tensor& dy, const Tensor& x, const Tensor& weight, const Tensor& rstd,
                                  const Tensor& dx, const Tensor& dweight) {
  dispatch_float(x.dtype(), "rmsnorm_backward", [&](auto tag) {
    using T = decltype(tag);
    const int64_t D = last_dim(x), rows = D ? x.numel() / D : 0;
    if (D == 0) return;
    const bool need_w = dweight.defined();
    if (rows == 0) {
      if (need_w) std::fill_n(ptr<T>(dweight), D, T(0));
      return;
    }
    std::vector<T> ones;
    const T* w = param_or<T>(weight, D, T(1), ones);
    const T *dyp = ptr<T>(dy), *xp = ptr<T>(x), *rp = ptr<T>(rstd);
    T* dxp = ptr<T>(dx);
    const int64_t cr = chunk_rows(rows), nchunks = (rows + cr - 1) / cr;
    std::vector<T> part(need_w ? size_t(nchunks * D) : 0, T(0));
    parallel_rows(nchunks, rows * D * 3, [&](int64_t c0, int64_t c1) __attribute__((always_inline)) {
      for (int64_t c = c0; c < c1; ++c) {
        T* pw = need_w ? part.data() + c * D : nullptr;
        const int64_t r_end = std::min(rows, (c + 1) * cr);
        for (int64_t r = c * cr; r < r_end; ++r)
          rmsnorm_backward_row(dyp + r * D, xp + r * D, w, rp[r], dxp + r * D, pw, D);
      }
    });
    if (need_w) reduce_chunks(part.data(), nchunks, D, D, ptr<T>(dweight));
  });
}

}  // namespace mg::cpu
