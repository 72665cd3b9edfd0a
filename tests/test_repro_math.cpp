// core/repro_math.h and the Box-Muller normals of core/philox.h built on it: accuracy against
// libm in higher precision (f32 exhaustively over the inputs Box-Muller can see), statistics of
// the normals, and pinned bits so that a compiler or flag change that alters the CPU's draws (and
// so breaks CPU/GPU identity) fails here even on machines without a GPU.
#include <cmath>
#include <cstdint>
#include <random>

#include "core/factories.h"
#include "core/philox.h"
#include "tests/test_helpers.h"

using namespace mg;

namespace {

const long double kPi = 3.141592653589793238462643383279502884L;

// Error of `got` in units of the last place of the correctly rounded result (f32 or f64).
template <class F>
double ulps(F got, long double exact) {
  const F r = F(exact);
  if (r == 0) return got == 0 ? 0.0 : 1e30;
  const long double ulp = (long double)std::nextafter(std::fabs(r), F(INFINITY)) - (long double)std::fabs(r);
  return double(std::fabs((long double)got - exact) / ulp);
}

// sin or cos of 2 pi w / 2^bits, reduced exactly in long double (w * 4 / 2^bits has at most 55
// significant bits), so the reference keeps full precision near the zeros of sin and cos.
long double ref_sincos_2pi(uint64_t w, int bits, bool cosine) {
  const long double t = (long double)w * 4.0L / std::ldexp(1.0L, bits);
  const long double q = std::nearbyint(t), r = t - q;
  const long double s = std::sin(kPi / 2 * r), c = std::cos(kPi / 2 * r);
  const int quadrant = int(std::fmod(q, 4.0L));
  const long double sv[4] = {s, c, -s, -c}, cv[4] = {c, -s, -c, s};
  return cosine ? cv[quadrant] : sv[quadrant];
}

// The same in double, precise enough to measure f32 errors and much faster.
double ref_sincos_2pi_q24(uint32_t w, bool cosine) {
  const double t = double(w) * 0x1p-22, q = std::nearbyint(t), r = t - q;
  const double s = std::sin(double(kPi) / 2 * r), c = std::cos(double(kPi) / 2 * r);
  const int quadrant = int(q) & 3;
  const double sv[4] = {s, c, -s, -c}, cv[4] = {c, -s, -c, s};
  return cosine ? cv[quadrant] : sv[quadrant];
}

}  // namespace

TEST_CASE("repro log (f32): within 1 ulp on every u01 value and across the positive floats") {
  double worst = 0;
  for (uint32_t w = 1; w < (1u << 24); ++w) {
    const float x = float(w) * 0x1p-24f;
    worst = std::max(worst, ulps(repro::log(x), (long double)std::log(double(x))));
  }
  MESSAGE("log f32 on the 2^24 u01 values: max error ", worst, " ulp");
  CHECK(worst <= 1.0);
  CHECK(repro::log(1.0f) == 0.0f);
  double sweep = 0;
  for (uint32_t b = 0x00800000u; b < 0x7f800000u; b += 331) {  // normal floats, every 331st
    const float x = repro::float_from_bits(b);
    if (x == 1.0f) continue;
    sweep = std::max(sweep, ulps(repro::log(x), (long double)std::log(double(x))));
  }
  MESSAGE("log f32 across all normal floats: max error ", sweep, " ulp");
  CHECK(sweep <= 1.0);
}

TEST_CASE("repro sin/cos of 2 pi w / 2^24 (f32): within 1.5 ulp for every w, exact zeros and ones") {
  double worst_s = 0, worst_c = 0;
  for (uint32_t w = 0; w <= (1u << 24); ++w) {
    worst_s = std::max(worst_s, ulps(repro::sincos_2pi_q24(w, false), (long double)ref_sincos_2pi_q24(w, false)));
    worst_c = std::max(worst_c, ulps(repro::sincos_2pi_q24(w, true), (long double)ref_sincos_2pi_q24(w, true)));
  }
  MESSAGE("sin f32 max error ", worst_s, " ulp, cos f32 ", worst_c, " ulp");
  CHECK(worst_s <= 1.5);
  CHECK(worst_c <= 1.5);
  // Quarter turns come out exact.
  CHECK(repro::sincos_2pi_q24(0, false) == 0.0f);
  CHECK(repro::sincos_2pi_q24(1u << 22, false) == 1.0f);
  CHECK(repro::sincos_2pi_q24(1u << 22, true) == 0.0f);
  CHECK(repro::sincos_2pi_q24(1u << 23, true) == -1.0f);
  CHECK(repro::sincos_2pi_q24(3u << 22, false) == -1.0f);
  CHECK(repro::sincos_2pi_q24(1u << 24, true) == 1.0f);
}

TEST_CASE("repro log, sin and cos (f64): within 1.5 ulp on random and edge arguments") {
  std::mt19937_64 rng(12345);
  double wl = 0, ws = 0, wc = 0;
  for (int t = 0; t < 300000; ++t) {
    uint64_t w = (rng() & ((uint64_t(1) << 53) - 1)) + 1;
    if (t < 40) w = (uint64_t(1) << 53) - uint64_t(t);             // u near 1 (log near 0)
    if (t >= 40 && t < 80) w = (uint64_t(1) << 51) + uint64_t(t) - 60;  // near a quarter turn
    if (t >= 80 && t < 120) w = uint64_t(t - 79);                   // tiny u
    const double x = double(w) * 0x1p-53;
    if (x < 1.0) wl = std::max(wl, ulps(repro::log(x), std::log((long double)x)));
    ws = std::max(ws, ulps(repro::sincos_2pi_q53(w, false), ref_sincos_2pi(w, 53, false)));
    wc = std::max(wc, ulps(repro::sincos_2pi_q53(w, true), ref_sincos_2pi(w, 53, true)));
  }
  MESSAGE("f64 max errors: log ", wl, " ulp, sin ", ws, " ulp, cos ", wc, " ulp");
  CHECK(wl <= 1.0);
  CHECK(ws <= 1.5);
  CHECK(wc <= 1.5);
  CHECK(repro::log(1.0) == 0.0);
}

TEST_CASE("Box-Muller normals: within a few ulp of sqrt(-2 log u1) cos/sin(2 pi u2) in long double") {
  double worst32 = 0, worst64 = 0;
  for (uint64_t i = 0; i < 400000; ++i) {
    const philox::U4 r = philox::philox4x32_10(i, 3, 99);
    for (int second = 0; second < 2; ++second) {
      const long double u1 = philox::u01(r.x), u2 = philox::u01(r.y);
      const long double rad = std::sqrt(-2 * std::log(u1));
      const long double want = rad * (second ? std::sin(2 * kPi * u2) : std::cos(2 * kPi * u2));
      // Near a zero of cos/sin the reference's own angle rounding (~1e-19) is measured in the
      // result's ulp; the absolute floor keeps that from counting.
      const float got = philox::box_muller_f32(r.x, r.y, second != 0);
      if (std::fabs(want) > 1e-6L) worst32 = std::max(worst32, ulps(got, want));
      const long double v1 = philox::u01_f64(r.x, r.y), v2 = philox::u01_f64(r.z, r.w);
      const long double rad64 = std::sqrt(-2 * std::log(v1));
      const long double want64 = rad64 * (second ? std::sin(2 * kPi * v2) : std::cos(2 * kPi * v2));
      const double got64 = philox::box_muller_f64(r.x, r.y, r.z, r.w, second != 0);
      if (std::fabs(want64) > 1e-2L) worst64 = std::max(worst64, ulps(got64, want64));
    }
  }
  MESSAGE("Box-Muller max error: f32 ", worst32, " ulp, f64 ", worst64, " ulp");
  CHECK(worst32 <= 3.0);
  CHECK(worst64 <= 4.0);
}

TEST_CASE("randn: mean, variance, skewness and kurtosis of 10^6 draws (f32 and f64)") {
  for (DType dt : {DType::f32, DType::f64}) {
    const int64_t n = 1000000;
    Tensor t = randn({n}, 2024, TensorOptions{dt});
    std::vector<double> v;
    if (dt == DType::f32)
      for (float x : t.to_vector<float>()) v.push_back(x);
    else
      v = t.to_vector<double>();
    double m = 0;
    for (double x : v) m += x;
    m /= double(n);
    double m2 = 0, m3 = 0, m4 = 0;
    for (double x : v) {
      const double d = x - m;
      m2 += d * d, m3 += d * d * d, m4 += d * d * d * d;
    }
    m2 /= double(n), m3 /= double(n), m4 /= double(n);
    const double skew = m3 / std::pow(m2, 1.5), kurt = m4 / (m2 * m2);
    INFO(dtype_name(dt) << ": mean " << m << " var " << m2 << " skew " << skew << " kurtosis " << kurt);
    // Standard errors at n = 10^6: mean 0.001, var 0.0014, skew 0.0024, kurtosis 0.005; bounds ~5 sigma.
    CHECK(std::abs(m) < 0.005);
    CHECK(std::abs(m2 - 1) < 0.007);
    CHECK(std::abs(skew) < 0.012);
    CHECK(std::abs(kurt - 3) < 0.025);
  }
}

TEST_CASE("normals are pinned to their bits (a change here breaks CPU/GPU identity)") {
  // Recorded from this implementation; identical at -O0/-O3, with -march=native
  // -ffp-contract=fast, and under clang and nvcc's host compiler.
  const uint32_t f32_bits[8] = {0x3f397b4au, 0x3e97720eu, 0xbfabadd3u, 0xbf041305u,
                                0x3f6fcb54u, 0xbf498422u, 0xbfb1acffu, 0x3ef4cef1u};
  const uint64_t f64_bits[8] = {0x3fe8c06c81f092ccull, 0x3fe9ba05496f76aaull, 0x3fe524bc694d7338ull,
                                0xbfdf20c0cbc96f09ull, 0xbfdd00ec42360389ull, 0xbfe79d79ffacb306ull,
                                0x3fd30795ed4b10c6ull, 0xbfd6724ddb3884f0ull};
  for (uint64_t k = 0; k < 8; ++k) {
    CHECK(repro::bits(philox::normal_f32(1, 3, k * 977)) == f32_bits[k]);
    CHECK(repro::bits(philox::normal_f64(1, 3, k * 977)) == f64_bits[k]);
  }
  // The backend's randn goes through the same function.
  Generator g(1);
  for (int k = 0; k < 3; ++k) (void)g.next_offset();
  Tensor t = randn({8 * 977}, g);
  const std::vector<float> v = t.to_vector<float>();
  for (size_t k = 0; k < 8; ++k) CHECK(repro::bits(v[k * 977]) == f32_bits[k]);
}
