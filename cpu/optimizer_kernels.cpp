// Optimizer updates: one fused pass over each parameter, reading grad and state once and writing
// param and state once. Scalars that depend only on the step are folded outside the loop, in f64,
// then rounded to the parameter dtype, as torch does for its f32 single-tensor path.
#include <cmath>
#include <cstring>

#include "cpu/cpu_backend.h"
#include "cpu/dispatch.h"
#include "cpu/strided.h"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace mg::cpu {

namespace {

// The AdamW update on one lane type: a scalar or a SIMD register, same operations in the same
// order, so every element rounds identically whichever path handles it.
template <class V>
struct AdamConsts {
  V decay, w1, b2, w2, step_size, bc2_sqrt, eps;
};

template <class V, class Sqrt>
inline void adamw_lane(V& p, V g, V& m, V& v, const AdamConsts<V>& c, Sqrt sqrt) {
  m = m + c.w1 * (g - m);  // torch's exp_avg.lerp_(grad, 1 - beta1)
  v = c.b2 * v + c.w2 * g * g;
  const V denom = sqrt(v) / c.bc2_sqrt + c.eps;
  p = p * c.decay - c.step_size * m / denom;
}

// Explicit SIMD because std::sqrt's errno branch keeps GCC from vectorising the loop without
// -fno-math-errno. SSE2 is part of x86-64; elsewhere the scalar loop runs alone.
#if defined(__SSE2__)
// A 16-byte GCC/Clang vector of T (plain vector types, unlike __m128, can be template
// arguments; arithmetic on them is elementwise IEEE, as on scalars).
template <class T>
struct Simd {
  typedef T V __attribute__((vector_size(16)));
  static constexpr int64_t width = int64_t(16 / sizeof(T));
  static V load(const T* x) {
    V a;
    std::memcpy(&a, x, sizeof a);
    return a;
  }
  static void store(T* x, V a) { std::memcpy(x, &a, sizeof a); }
  static V splat(T x) {
    V a;
    for (int64_t i = 0; i < width; ++i) a[i] = x;
    return a;
  }
  static V sqrt(V a) {
    if constexpr (sizeof(T) == 4) return V(_mm_sqrt_ps(__m128(a)));
    else return V(_mm_sqrt_pd(__m128d(a)));
  }
};
#endif

void check_update(const char* op, const Tensor& param, const Tensor& other, const char* what) {
  MG_CHECK(other.shape() == param.shape() && other.dtype() == param.dtype(), op, ": ", what, " ", other.desc(),
           " does not match param ", param.desc());
  MG_CHECK(other.is_contiguous(), op, ": ", what, " ", other.desc(), " must be contiguous");
}

}  // namespace

void CpuBackend::adamw_step(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                            double lr, double beta1, double beta2, double eps, double weight_decay, int64_t step) {
  MG_CHECK(param.is_contiguous(), "adamw_step: param ", param.desc(), " must be contiguous");
  check_update("adamw_step", param, grad, "grad");
  check_update("adamw_step", param, exp_avg, "exp_avg");
  check_update("adamw_step", param, exp_avg_sq, "exp_avg_sq");
  MG_CHECK(step >= 1, "adamw_step: step counts from 1, got ", step);
  dispatch_float(param.dtype(), "adamw_step", [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = param.numel();
    T* __restrict p = ptr<T>(param);
    const T* __restrict g = ptr<T>(grad);
    T* __restrict m = ptr<T>(exp_avg);
    T* __restrict v = ptr<T>(exp_avg_sq);
    const double bc1 = 1.0 - std::pow(beta1, double(step));
    const double bc2 = 1.0 - std::pow(beta2, double(step));
    const T decay = T(1.0 - lr * weight_decay);
    const T w1 = T(1.0 - beta1), b2 = T(beta2), w2 = T(1.0 - beta2);
    const T step_size = T(lr / bc1);
    // Dividing by sqrt(bc2) rather than multiplying by its inverse keeps torch's rounding.
    const T bc2_sqrt = T(std::sqrt(bc2));
    const AdamConsts<T> c{decay, w1, b2, w2, step_size, bc2_sqrt, T(eps)};
    auto scalar_sqrt = [](T x) { return std::sqrt(x); };
    int64_t done = 0;
#if defined(__SSE2__)
    using S = Simd<T>;
    using V = typename S::V;
    const AdamConsts<V> cv{S::splat(c.decay), S::splat(c.w1),        S::splat(c.b2), S::splat(c.w2),
                           S::splat(c.step_size), S::splat(c.bc2_sqrt), S::splat(c.eps)};
    const int64_t blocks = n / S::width;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t i = b * S::width;
      V pv = S::load(p + i), mv = S::load(m + i), vv = S::load(v + i);
      adamw_lane(pv, S::load(g + i), mv, vv, cv, S::sqrt);
      S::store(p + i, pv);
      S::store(m + i, mv);
      S::store(v + i, vv);
    }
    done = blocks * S::width;
#endif
    for (int64_t i = done; i < n; ++i) adamw_lane(p[i], g[i], m[i], v[i], c, scalar_sqrt);
  });
}

void CpuBackend::sgd_step(const Tensor& param, const Tensor& grad, const Tensor& momentum_buf, double lr,
                          double momentum, double dampening, double weight_decay, bool nesterov) {
  MG_CHECK(param.is_contiguous(), "sgd_step: param ", param.desc(), " must be contiguous");
  check_update("sgd_step", param, grad, "grad");
  MG_CHECK(momentum == 0 || momentum_buf.defined(), "sgd_step: momentum ", momentum, " needs a momentum buffer");
  if (momentum != 0) check_update("sgd_step", param, momentum_buf, "momentum_buf");
  dispatch_float(param.dtype(), "sgd_step", [&](auto tag) {
    using T = decltype(tag);
    const int64_t n = param.numel();
    T* __restrict p = ptr<T>(param);
    const T* __restrict g = ptr<T>(grad);
    const T tlr = T(lr), wd = T(weight_decay), mom = T(momentum), keep = T(1.0 - dampening);
    const bool par = n >= kParallelGrain;
    if (momentum == 0) {
#pragma omp parallel for simd schedule(static) if (par)
      for (int64_t i = 0; i < n; ++i) p[i] -= tlr * (g[i] + wd * p[i]);
      return;
    }
    T* __restrict b = ptr<T>(momentum_buf);
    if (nesterov) {
#pragma omp parallel for simd schedule(static) if (par)
      for (int64_t i = 0; i < n; ++i) {
        const T d = g[i] + wd * p[i];
        const T bi = mom * b[i] + keep * d;
        b[i] = bi;
        p[i] -= tlr * (d + mom * bi);
      }
    } else {
#pragma omp parallel for simd schedule(static) if (par)
      for (int64_t i = 0; i < n; ++i) {
        const T bi = mom * b[i] + keep * (g[i] + wd * p[i]);
        b[i] = bi;
        p[i] -= tlr * bi;
      }
    }
  });
}

}  // namespace mg::cpu
