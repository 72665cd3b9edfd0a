// Elementwise activations (GELU exact and tanh forms, SiLU, ReLU) and SwiGLU, forward and backward,
// on contiguous tensors.
//
// f32 uses branch-free polynomial exp/erfc (below) so that every loop vectorises; f64 uses the
// C library (these paths serve gradcheck and audits, where accuracy matters more than speed).
// Each kernel body is compiled for AVX-512, AVX2+FMA and the baseline ISA and chosen at run time,
// so the library needs no -march flag.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "cpu/bf16_math.h"
#include "cpu/cpu_backend.h"
#include "cpu/dispatch.h"
#include "cpu/fast_math.h"
#include "cpu/parallel.h"
#include "cpu/row_chunks.h"

namespace mg::cpu {
namespace {

// ---- branch-free f32 math (select, exp_approx, exp_t: cpu/fast_math.h) -----------------------

// Phi(x) and the Gaussian factor exp(-x^2 / 2) together, so GELU's gradient, which needs both,
// pays for one exp. The tail 0.5 erfc(a), a = |x| / sqrt 2 >= 0, is 0.5 t Q(t) exp(-a^2) with
// t = 1 / (1 + a/2) (the Numerical Recipes substitution) and Q a degree-10 polynomial fitted
// (Lawson-reweighted least squares against mpmath) to erfc(a) exp(a^2) / t with relative error
// < 4.5e-9 for t in [0.14, 1], i.e. |x| <= 14.6; beyond that exp(-a^2) is under f32's range and
// the tail is 0. The error is relative, so GELU of large negative inputs has no cancellation.
MG_ALWAYS_INLINE float normal_cdf_gauss(float x, float& gauss) {
  const float a = std::fabs(x) * 0.70710678118654752f;
  const float t = 1.0f / (1.0f + 0.5f * a);
  float q = 0.03886892084643566f;
  q = q * t + -0.2092855062421877f;
  q = q * t + 0.42844067181473466f;
  q = q * t + -0.3592608532935071f;
  q = q * t + 0.04361211779849586f;
  q = q * t + -0.005443739901752301f;
  q = q * t + 0.07188607861621495f;
  q = q * t + 0.18093541400508448f;
  q = q * t + 0.245980719002288f;
  q = q * t + 0.28217440783949066f;
  q = q * t + 0.28209177392404045f;
  // a^2 = x^2 / 2 as 0.5 x x: one rounding (0.5 is exact) where (|x| / sqrt 2)^2 has three, which
  // in the tail (exp's argument near -80) would triple exp's relative error.
  gauss = exp_nonpos(-0.5f * x * x);
  const float h = 0.5f * t * q * gauss;
  return select(x > 0.0f, 1.0f - h, h);
}

// Standard normal CDF Phi(x) = 0.5 erfc(-x / sqrt 2).
MG_ALWAYS_INLINE float normal_cdf(float x) {
  float gauss;
  return normal_cdf_gauss(x, gauss);
}
MG_ALWAYS_INLINE double normal_cdf(double x) { return 0.5 * std::erfc(-x * 0.70710678118654752); }

constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluTanhCubic = 0.044715;

// ---- activations --------------------------------------------------------------------------

template <class T>
MG_ALWAYS_INLINE T sigmoid(T x) {
  return T(1) / (T(1) + exp_t(-x));
}

template <class T>
MG_ALWAYS_INLINE T gelu_fwd(T x) {
  return x * normal_cdf(x);
}
// Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi).
MG_ALWAYS_INLINE float gelu_grad(float x) {
  float gauss;
  const float cdf = normal_cdf_gauss(x, gauss);
  return cdf + x * float(kInvSqrt2Pi) * gauss;
}
MG_ALWAYS_INLINE double gelu_grad(double x) { return normal_cdf(x) + x * kInvSqrt2Pi * std::exp(-0.5 * x * x); }

// 0.5 x (1 + tanh(u)) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3).
template <class T>
MG_ALWAYS_INLINE T gelu_tanh_fwd(T x) {
  const T u = T(kSqrt2OverPi) * (x + T(kGeluTanhCubic) * x * x * x);
  return x * sigmoid(T(2) * u);
}
// s + 2 x s (1 - s) u'. Beyond |x| = 30 the sigmoid is saturated in f32 and f64 alike (s is 0 or
// 1 and s (1 - s) is 0), so x is clamped there: the value is unchanged and x^3 cannot overflow into
// 0 * inf.
template <class T>
MG_ALWAYS_INLINE T gelu_tanh_grad(T x) {
  T xc = select(x < T(-30), T(-30), x);
  xc = select(xc > T(30), T(30), xc);
  const T u = T(kSqrt2OverPi) * (xc + T(kGeluTanhCubic) * xc * xc * xc);
  const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluTanhCubic) * xc * xc);
  const T s = sigmoid(T(2) * u);
  return s + T(2) * xc * s * (T(1) - s) * du;
}

template <class T>
MG_ALWAYS_INLINE T silu_fwd(T x) {
  return x * sigmoid(x);
}
template <class T>
MG_ALWAYS_INLINE T silu_grad(T x) {  // s (1 + x (1 - s))
  const T s = sigmoid(x);
  return s * (T(1) + x * (T(1) - s));
}

// relu(NaN) = NaN and relu'(x) = 0 for x <= 0, as in PyTorch.
template <class T>
MG_ALWAYS_INLINE T relu_fwd(T x) {
  return select(x < T(0), T(0), x);
}

// y = fn(x + bias): S is the storage type, the arithmetic runs in compute_t<S> (f32 for bf16). The
// bias, when given, is [C] along the last dim; rows of C are walked so the inner loop stays a
// plain vectorisable run.
template <class S, class F>
void map1(const Tensor& x, const Tensor& bias, const Tensor& y, F fn) {
  using C = compute_t<S>;
  const S* xp = ptr<S>(x);
  S* yp = ptr<S>(y);
  if (!bias.defined()) {
    parallel_elements(x.numel(), [&](int64_t b, int64_t e) __attribute__((always_inline)) {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) yp[i] = narrow<S>(fn(widen(xp[i])));
    });
    return;
  }
  const S* bp = ptr<S>(bias);
  const int64_t cols = bias.numel(), rows = x.numel() / cols;
  parallel_rows(rows, x.numel(), [&](int64_t r0, int64_t r1) __attribute__((always_inline)) {
    for (int64_t r = r0; r < r1; ++r) {
      const S* xr = xp + r * cols;
      S* yr = yp + r * cols;
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) yr[j] = narrow<S>(fn(C(widen(xr[j]) + widen(bp[j]))));
    }
  });
}

// dx = fn(dy, x + bias): dy * act'(v) for most activations, a select for ReLU. With dbias (the
// bias's gradient, [C] of compute_t<S>), the column sums of dx as stored (bf16 values widened) are
// taken in the same pass, by row chunks (cpu/row_chunks.h), instead of a second pass over dx.
template <class S, class F>
void map_grad(const Tensor& dy, const Tensor& x, const Tensor& bias, const Tensor& dx, const Tensor& dbias, F fn) {
  using C = compute_t<S>;
  const S *dyp = ptr<S>(dy), *xp = ptr<S>(x);
  S* dxp = ptr<S>(dx);
  if (!bias.defined()) {
    parallel_elements(x.numel(), [&](int64_t b, int64_t e) __attribute__((always_inline)) {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) dxp[i] = narrow<S>(fn(widen(dyp[i]), widen(xp[i])));
    });
    return;
  }
  const S* bp = ptr<S>(bias);
  const int64_t cols = bias.numel(), rows = cols ? x.numel() / cols : 0;
  if (!dbias.defined()) {
    parallel_rows(rows, x.numel(), [&](int64_t r0, int64_t r1) __attribute__((always_inline)) {
      for (int64_t r = r0; r < r1; ++r) {
        const int64_t o = r * cols;
#pragma omp simd
        for (int64_t j = 0; j < cols; ++j)
          dxp[o + j] = narrow<S>(fn(widen(dyp[o + j]), C(widen(xp[o + j]) + widen(bp[j]))));
      }
    });
    return;
  }
  C* db = ptr<C>(dbias);
  if (rows == 0) {
    std::fill_n(db, cols, C(0));
    return;
  }
  const int64_t cr = chunk_rows(rows), nchunks = chunk_count(rows);
  std::vector<C> part(size_t(nchunks * cols), C(0));
  parallel_rows(nchunks, x.numel(), [&](int64_t c0, int64_t c1) __attribute__((always_inline)) {
    for (int64_t c = c0; c < c1; ++c) {
      C* pc = part.data() + c * cols;
      for (int64_t r = c * cr, r_end = std::min(rows, (c + 1) * cr); r < r_end; ++r) {
        const int64_t o = r * cols;
#pragma omp simd
        for (int64_t j = 0; j < cols; ++j) {
          const C d = fn(widen(dyp[o + j]), C(widen(xp[o + j]) + widen(bp[j])));
          dxp[o + j] = narrow<S>(d);
          pc[j] += stored_value<S>(d);
        }
      }
    }
  });
  reduce_chunks(part.data(), nchunks, cols, cols, db);
}

}  // namespace

void CpuBackend::activation_forward(Activation act, const Tensor& x, const Tensor& bias, const Tensor& y) {
  dispatch_float_bf16(x.dtype(), "activation_forward", [&](auto tag) {
    using S = decltype(tag);
    using T = compute_t<S>;
    switch (act) {
      case Activation::gelu:
        return map1<S>(x, bias, y, [](T v) __attribute__((always_inline)) { return gelu_fwd(v); });
      case Activation::gelu_tanh:
        return map1<S>(x, bias, y, [](T v) __attribute__((always_inline)) { return gelu_tanh_fwd(v); });
      case Activation::silu:
        return map1<S>(x, bias, y, [](T v) __attribute__((always_inline)) { return silu_fwd(v); });
      case Activation::relu:
        return map1<S>(x, bias, y, [](T v) __attribute__((always_inline)) { return relu_fwd(v); });
    }
    throw Error("cpu activation_forward: unknown activation");
  });
}

void CpuBackend::activation_backward(Activation act, const Tensor& dy, const Tensor& x, const Tensor& bias,
                                     const Tensor& dx, const Tensor& dbias) {
  dispatch_float_bf16(x.dtype(), "activation_backward", [&](auto tag) {
    using S = decltype(tag);
    using T = compute_t<S>;
    switch (act) {
      case Activation::gelu:
        return map_grad<S>(dy, x, bias, dx, dbias, [](T d, T v) __attribute__((always_inline)) { return d * gelu_grad(v); });
      case Activation::gelu_tanh:
        return map_grad<S>(dy, x, bias, dx, dbias,
                           [](T d, T v) __attribute__((always_inline)) { return d * gelu_tanh_grad(v); });
      case Activation::silu:
        return map_grad<S>(dy, x, bias, dx, dbias, [](T d, T v) __attribute__((always_inline)) { return d * silu_grad(v); });
      case Activation::relu:
        // A select, not dy * relu'(x): dy = inf or NaN where x <= 0 still gives 0, as PyTorch.
        return map_grad<S>(dy, x, bias, dx, dbias,
                           [](T d, T v) __attribute__((always_inline)) { return select(v <= T(0), T(0), d); });
    }
    throw Error("cpu activation_backward: unknown activation");
  });
}

void CpuBackend::swiglu_forward(const Tensor& gate, const Tensor& up, const Tensor& y) {
  dispatch_float_bf16(gate.dtype(), "swiglu_forward", [&](auto tag) {
    using S = decltype(tag);
    const S *gp = ptr<S>(gate), *up_ = ptr<S>(up);
    S* yp = ptr<S>(y);
    parallel_elements(gate.numel(), [&](int64_t b, int64_t e) __attribute__((always_inline)) {
#pragma omp simd
      for (int64_t i = b; i < e; ++i) yp[i] = narrow<S>(silu_fwd(widen(gp[i])) * widen(up_[i]));
    });
  });
}

void CpuBackend::swiglu_backward(const Tensor& dy, const Tensor& gate, const Tensor& up, const Tensor& dgate,
                                 const Tensor& dup) {
  dispatch_float_bf16(gate.dtype(), "swiglu_backward", [&](auto tag) {
    using S = decltype(tag);
    using T = compute_t<S>;
    const S *dyp = ptr<S>(dy), *gp = ptr<S>(gate), *up_ = ptr<S>(up);
    S* dgp = dgate.defined() ? ptr<S>(dgate) : nullptr;
    S* dup_ = dup.defined() ? ptr<S>(dup) : nullptr;
    parallel_elements(gate.numel(), [&](int64_t b, int64_t e) __attribute__((always_inline)) {
      if (dgp && dup_) {
#pragma omp simd
        for (int64_t i = b; i < e; ++i) {
          const T g = widen(gp[i]), s = sigmoid(g), d = widen(dyp[i]);
          dgp[i] = narrow<S>(d * widen(up_[i]) * s * (T(1) + g * (T(1) - s)));
          dup_[i] = narrow<S>(d * g * s);
        }
      } else if (dgp) {
#pragma omp simd
        for (int64_t i = b; i < e; ++i) dgp[i] = narrow<S>(widen(dyp[i]) * widen(up_[i]) * silu_grad(widen(gp[i])));
      } else if (dup_) {
#pragma omp simd
        for (int64_t i = b; i < e; ++i) dup_[i] = narrow<S>(widen(dyp[i]) * silu_fwd(widen(gp[i])));
      }
    });
  });
}

}  // namespace mg::cpu
