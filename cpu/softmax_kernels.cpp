// Softmax / log-softmax over the last dim and fused softmax cross-entropy, forward and backward,
// on contiguous [rows, n] tensors. One thread owns a row at a time; a row (up to a few thousand
// entries) stays in L1/L2 between its passes, so each kernel reads its inputs from memory once.
//
// Cross-entropy keeps only the row logsumexp from the forward; the backward recomputes
// softmax(logits) from it while writing the gradient, so no [rows, V] probability tensor exists.
//
// f32 uses a branch-free polynomial exp so every loop vectorises; f64 uses the C library. Each
// kernel body is compiled for AVX-512, AVX2+FMA and the baseline ISA and chosen at run time.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "cpu/cpu_backend.h"
#include "cpu/dispatch.h"
#include "cpu/fast_math.h"
#include "cpu/bf16_math.h"
#include "cpu/parallel.h"

namespace mg::cpu {
namespace {

// ---- rows ---------------------------------------------------------------------------------

// S: the stored type of x; the arithmetic runs in compute_t<S> (f32 for bf16 logits).
template <class S>
MG_ALWAYS_INLINE compute_t<S> row_max(const S* x, int64_t n) {
  using T = compute_t<S>;
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < n; ++j) {
    const T v = widen(x[j]);
    m = v > m ? v : m;
  }
  return m;
}

// sum of exp(x - shift) with shift >= every x (the row max), so every argument is <= 0 or NaN.
template <class S>
MG_ALWAYS_INLINE compute_t<S> row_sum_exp(const S* x, compute_t<S> shift, int64_t n) {
  using T = compute_t<S>;
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += exp_nonpos_t(T(widen(x[j]) - shift));
  return s;
}

// logsumexp of a row, shifted by its max so nothing overflows.
template <class S>
MG_ALWAYS_INLINE compute_t<S> row_logsumexp(const S* x, int64_t n) {
  const compute_t<S> m = row_max(x, n);
  return m + std::log(row_sum_exp(x, m, n));
}

template <class T>
MG_ALWAYS_INLINE void softmax_row(const T* x, T* y, int64_t n, bool log) {
  const T m = row_max(x, n);
  if (log) {
    const T c = m + std::log(row_sum_exp(x, m, n));
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) y[j] = x[j] - c;
    return;
  }
  T s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) {
    const T e = exp_nonpos_t(x[j] - m);
    y[j] = e;
    s += e;
  }
  const T inv = T(1) / s;
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) y[j] *= inv;
}

// softmax: dx = y (dy - sum(dy y)); log-softmax: dx = dy - exp(y) sum(dy).
template <class T>
MG_ALWAYS_INLINE void softmax_backward_row(const T* dy, const T* y, T* dx, int64_t n, bool log) {
  T s = 0;
  if (log) {
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < n; ++j) s += dy[j];
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) dx[j] = dy[j] - exp_t(y[j]) * s;
    return;
  }
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += dy[j] * y[j];
#pragma omp simd
  for (int64_t j = 0; j < n; ++j) dx[j] = y[j] * (dy[j] - s);
}

inline int64_t last_dim(const Tensor& x) { return x.dim() ? x.shape().back() : 1; }

}  // namespace

void CpuBackend::softmax_forward(const Tensor& x, const Tensor& y, bool log) {
  dispatch_float(x.dtype(), "softmax_forward", [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = last_dim(x), rows = n ? x.numel() / n : 0;
    const T* xp = ptr<T>(x);
    T* yp = ptr<T>(y);
    parallel_rows(rows, rows * n, [&](int64_t r0, int64_t r1) __attribute__((always_inline)) {
      for (int64_t r = r0; r < r1; ++r) softmax_row(xp + r * n, yp + r * n, n, log);
    });
  });
}

void CpuBackend::softmax_backward(const Tensor& dy, const Tensor& y, const Tensor& dx, bool log) {
  dispatch_float(y.dtype(), "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = last_dim(y), rows = n ? y.numel() / n : 0;
    const T *dyp = ptr<T>(dy), *yp = ptr<T>(y);
    T* dxp = ptr<T>(dx);
    parallel_rows(rows, rows * n, [&](int64_t r0, int64_t r1) __attribute__((always_inline)) {
      for (int64_t r = r0; r < r1; ++r) softmax_backward_row(dyp + r * n, yp + r * n, dxp + r * n, n, log);
    });
  });
}

void CpuBackend::cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                                       const Tensor& loss_rows, const Tensor& lse) {
  const int64_t V = last_dim(logits), N = targets.numel();
  const int32_t* tp = ptr<int32_t>(targets);
  for (int64_t i = 0; i < N; ++i)
    MG_CHECK(tp[i] == ignore_index || (tp[i] >= 0 && tp[i] < V), "cross_entropy: target ", tp[i], " at row ", i,
             " is out of range [0, ", V, ") and is not ignore_index (", ignore_index, ")");
  // bf16 logits (autocast's lm_head) are read as they are, losses and lse in f32.
  dispatch_float_bf16(logits.dtype(), "cross_entropy_forward", [&](auto tag) {
    using S = decltype(tag);
    using T = compute_t<S>;
    const S* xp = ptr<S>(logits);
    T* lp = ptr<T>(loss_rows);
    T* sp = ptr<T>(lse);
    parallel_rows(N, N * V, [&](int64_t r0, int64_t r1) __attribute__((always_inline)) {
      for (int64_t r = r0; r < r1; ++r) {
        const S* x = xp + r * V;
        const T l = row_logsumexp(x, V);
        sp[r] = l;
        lp[r] = tp[r] == ignore_index ? T(0) : T(l - widen(x[tp[r]]));
      }
    });
  });
}

void CpuBackend::cross_entropy_backward(const Tensor& logits, const Tensor& targets, const Tensor& lse,
                                        int64_t ignore_index, const Tensor& dloss_rows, double scale,
                                        const Tensor& dlogits) {
  // bf16 logits: dlogits is bf16 too (each element computed in f32, rounded once); lse and the
  // upstream gradient are f32.
  dispatch_float_bf16(logits.dtype(), "cross_entropy_backward", [&](auto tag) {
    using S = decltype(tag);
    using T = compute_t<S>;
    const int64_t V = last_dim(logits), N = targets.numel();
    const int32_t* tp = ptr<int32_t>(targets);
    const S* xp = ptr<S>(logits);
    const T *sp = ptr<T>(lse), *gp = ptr<T>(dloss_rows);
    const int64_t gs = dloss_rows.dim() ? dloss_rows.strides()[0] : 0;  // 0: one value for every row
    S* dp = ptr<S>(dlogits);
    parallel_rows(N, N * V * 2, [&](int64_t r0, int64_t r1) __attribute__((always_inline)) {
      for (int64_t r = r0; r < r1; ++r) {
        const S* x = xp + r * V;
        S* d = dp + r * V;
        if (tp[r] == ignore_index) {
          std::fill_n(d, V, narrow<S>(T(0)));
          continue;
        }
        const T c = T(scale) * gp[r * gs], l = sp[r];
#pragma omp simd
        for (int64_t j = 0; j < V; ++j) d[j] = narrow<S>(c * exp_t(T(widen(x[j]) - l)));
        if constexpr (std::is_same_v<S, bf16>) {
          d[tp[r]] = narrow<S>(c * exp_t(T(widen(x[tp[r]]) - l)) - c);  // one rounding, from f32
        } else {
          d[tp[r]] -= c;
        }
      }
    });
  });
}

}  // namespace mg::cpu
