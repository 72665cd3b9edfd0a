// Rotary position embedding (Llama's rotate-half form). The cos/sin table is built once per call
// in f64 (angles at large positions lose digits in f32), then every row is one fused pass. bf16
// is read and written as it is (the q and k of a bf16 projection under autocast), rotated in f32
// and rounded once.
#include <cmath>
#include <vector>

#include "cpu/bf16_math.h"
#include "cpu/cpu_backend.h"
#include "cpu/dispatch.h"
#include "cpu/strided.h"

namespace mg::cpu {

void CpuBackend::rope(const Tensor& x, double theta, int64_t pos_offset, bool inverse, const Tensor& out) {
  MG_CHECK(x.dim() >= 2, "cpu rope: expected [N, T, Dh], got ", x.desc());
  const int64_t T = x.size(-2), Dh = x.size(-1);
  MG_CHECK(Dh % 2 == 0, "cpu rope: head dim must be even, got ", x.desc());
  if (x.numel() == 0) return;
  const int64_t half = Dh / 2, rows = x.numel() / Dh;
  dispatch_float_bf16(x.dtype(), "rope", [&](auto tag) {
    using S = decltype(tag);  // storage
    using V = compute_t<S>;
    // table[t * half + i] = angle of pair i at position pos_offset + t; inverse negates sin.
    std::vector<V> cos_t(size_t(T * half)), sin_t(size_t(T * half));
    const double sgn = inverse ? -1.0 : 1.0;
    for (int64_t i = 0; i < half; ++i) {
      const double inv_freq = std::pow(theta, -2.0 * double(i) / double(Dh));
      for (int64_t t = 0; t < T; ++t) {
        const double a = double(pos_offset + t) * inv_freq;
        cos_t[size_t(t * half + i)] = V(std::cos(a));
        sin_t[size_t(t * half + i)] = V(sgn * std::sin(a));
      }
    }
    const S* xp = ptr<S>(x);
    S* op = ptr<S>(out);
#pragma omp parallel for schedule(static) if (x.numel() >= kParallelGrain)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t t = r % T;
      const V* c = cos_t.data() + t * half;
      const V* s = sin_t.data() + t * half;
      const S* x1 = xp + r * Dh;
      const S* x2 = x1 + half;
      S* o1 = op + r * Dh;
      S* o2 = o1 + half;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const V a = widen(x1[i]), b = widen(x2[i]);
        o1[i] = narrow<S>(a * c[i] - b * s[i]);
        o2[i] = narrow<S>(b * c[i] + a * s[i]);
      }
    }
  });
}

}  // namespace mg::cpu
