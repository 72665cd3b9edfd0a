#pragma once
// log, sin and cos whose results are the same bits on every host and device: the CPU's libm and
// CUDA's math library each round their own way (within an ulp or two), so a value computed with
// logf/sinf on both sides differs now and then. These functions use only IEEE operations that are
// correctly rounded everywhere (add, mul, div, sqrt, fma, exact bit manipulation) in a fixed
// order. Every a*b+c is an explicit fma, and no product is ever an operand of an add or subtract,
// so no compiler can contract one differently (nvcc fuses by default; GCC may with
// -ffp-contract=fast and an FMA-capable target). Accuracy is within a few ulp of the true value
// (tests/test_repro_math.cpp measures it exhaustively for f32).
// The random normals of core/philox.h are built on these. Compiles in host and device code and
// includes no CUDA header.
#include <cmath>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define MG_HD __host__ __device__ __forceinline__
#else
#define MG_HD inline
#endif

namespace mg::repro {

// ---- correctly rounded primitives, spelled so that nothing else can be substituted ----------
// Each names its device form (CUDA's round-to-nearest intrinsics, which nvcc never contracts)
// and its host form (the plain IEEE operation; std::fma for the fused one).

#if defined(__CUDA_ARCH__)
#define MG_REPRO_DEVICE_OR_HOST(device, host) device
#else
#define MG_REPRO_DEVICE_OR_HOST(device, host) host
#endif

// A bit cast through memcpy (the compiler turns it into a register move).
template <class To, class From>
MG_HD To bit_copy(From v) {
  static_assert(sizeof(To) == sizeof(From));
  To out;
  std::memcpy(&out, &v, sizeof out);
  return out;
}

MG_HD float fma(float a, float b, float c) { return MG_REPRO_DEVICE_OR_HOST(__fmaf_rn(a, b, c), std::fma(a, b, c)); }
MG_HD double fma(double a, double b, double c) { return MG_REPRO_DEVICE_OR_HOST(__fma_rn(a, b, c), std::fma(a, b, c)); }
MG_HD float mul(float a, float b) { return MG_REPRO_DEVICE_OR_HOST(__fmul_rn(a, b), a * b); }
MG_HD double mul(double a, double b) { return MG_REPRO_DEVICE_OR_HOST(__dmul_rn(a, b), a * b); }
MG_HD float add(float a, float b) { return MG_REPRO_DEVICE_OR_HOST(__fadd_rn(a, b), a + b); }
MG_HD double add(double a, double b) { return MG_REPRO_DEVICE_OR_HOST(__dadd_rn(a, b), a + b); }
MG_HD float div(float a, float b) { return MG_REPRO_DEVICE_OR_HOST(__fdiv_rn(a, b), a / b); }
MG_HD double div(double a, double b) { return MG_REPRO_DEVICE_OR_HOST(__ddiv_rn(a, b), a / b); }
MG_HD float sqrt(float a) { return MG_REPRO_DEVICE_OR_HOST(__fsqrt_rn(a), std::sqrt(a)); }
MG_HD double sqrt(double a) { return MG_REPRO_DEVICE_OR_HOST(__dsqrt_rn(a), std::sqrt(a)); }
MG_HD uint32_t bits(float f) { return MG_REPRO_DEVICE_OR_HOST(__float_as_uint(f), bit_copy<uint32_t>(f)); }
MG_HD float float_from_bits(uint32_t u) { return MG_REPRO_DEVICE_OR_HOST(__uint_as_float(u), bit_copy<float>(u)); }
MG_HD uint64_t bits(double d) {
  return MG_REPRO_DEVICE_OR_HOST(uint64_t(__double_as_longlong(d)), bit_copy<uint64_t>(d));
}
MG_HD double double_from_bits(uint64_t u) {
  return MG_REPRO_DEVICE_OR_HOST(__longlong_as_double((long long)u), bit_copy<double>(u));
}

#undef MG_REPRO_DEVICE_OR_HOST

// horner(x, c0, c1, ..., cn) = (...((c0 x + c1) x + c2) ...) x + cn, one fma per step, in that
// order: the polynomials below are written highest coefficient first.
template <class T>
MG_HD T horner(T, T c0) {
  return c0;
}
template <class T, class... C>
MG_HD T horner(T x, T c0, T c1, C... rest) {
  return horner(x, fma(x, c0, c1), T(rest)...);
}

// ---- natural logarithm -----------------------------------------------------------------------
// fdlibm's method: x = 2^k m with m in [sqrt(2)/2, sqrt(2)), f = m - 1 (exact),
// log(1 + f) = f - f^2/2 + s (f^2/2 + R(s^2)) with s = f / (2 + f), plus k ln 2 in two parts.

// x must be positive, finite and normal (no subnormal, zero, infinity or NaN handling).
MG_HD float log(float x) {
  uint32_t ix = bits(x);
  int32_t k = int32_t(ix >> 23) - 127;
  ix &= 0x007fffffu;
  const uint32_t i = (ix + 0x4afb20u) & 0x800000u;  // mantissa >= sqrt(2): use m / 2
  k += int32_t(i >> 23);
  const float f = add(float_from_bits(ix | (i ^ 0x3f800000u)), -1.0f);
  const float s = div(f, add(2.0f, f));
  const float z = mul(s, s);
  const float R = mul(z, horner(z, 0x1.f13c4cp-3f, 0x1.23d3dcp-2f, 0x1.999c26p-2f, 0x1.555554p-1f));
  const float hf = mul(0.5f, f);  // exact
  const float dk = float(k);
  // f - hf*f + s*(hf*f + R) + k*ln2_lo + k*ln2_hi, small terms first
  const float a = fma(s, fma(hf, f, R), mul(dk, 0x1.2fefa2p-17f));
  const float b = add(fma(-hf, f, a), f);
  return fma(dk, 0x1.62e300p-1f, b);
}

MG_HD double log(double x) {
  uint64_t ix = bits(x);
  int64_t k = int64_t(ix >> 52) - 1023;
  ix &= uint64_t(0x000fffffffffffff);
  const uint64_t i = (ix + uint64_t(0x95f6400000000)) & uint64_t(0x10000000000000);
  k += int64_t(i >> 52);
  const double f = add(double_from_bits(ix | (i ^ uint64_t(0x3ff0000000000000))), -1.0);
  const double s = div(f, add(2.0, f));
  const double z = mul(s, s);
  const double R = mul(z, horner(z, 1.479819860511658591e-01, 1.531383769920937332e-01, 1.818357216161805012e-01,
                                  2.222219843214978396e-01, 2.857142874366239149e-01, 3.999999999940941908e-01,
                                  6.666666666666735130e-01));
  const double hf = mul(0.5, f);
  const double dk = double(k);
  const double a = fma(s, fma(hf, f, R), mul(dk, 1.90821492927058770002e-10));
  const double b = add(fma(-hf, f, a), f);
  return fma(dk, 6.93147180369123816490e-01, b);
}

// ---- sine and cosine of (pi/2) r for |r| <= 1/2 ---------------------------------------------
// Taylor series in r (truncation error below 1e-9 relative for f32, 1e-17 for f64); the leading
// pi/2 is split in two so that its rounding does not reach the result.

MG_HD float sin_halfpi(float r) {
  const float r2 = mul(r, r);
  const float q = horner(r2, 0x1.507834p-13f, -0x1.32d2ccp-8f, 0x1.466bc6p-4f, -0x1.4abbcep-1f, -0x1.777a5cp-25f);
  return fma(r, 0x1.921fb6p+0f, mul(r, q));
}
MG_HD float cos_halfpi(float r) {
  const float r2 = mul(r, r);
  return horner(r2, -0x1.a6d1f2p-16f, 0x1.e1f506p-11f, -0x1.55d3c8p-6f, 0x1.03c1f0p-2f, -0x1.3bd3ccp+0f, 1.0f);
}

MG_HD double sin_halfpi(double r) {
  const double r2 = mul(r, r);
  const double q = horner(r2, 0x1.aaec32af93359p-38, -0x1.6fadb9f155744p-31, 0x1.e8f434d018d63p-25,
                          -0x1.e3074fde8871fp-19, 0x1.50783487ee782p-13, -0x1.32d2cce62bd86p-8,
                          0x1.466bc6775aae2p-4, -0x1.4abbce625be53p-1, 0x1.1a62633145c07p-54);
  return fma(r, 0x1.921fb54442d18p+0, mul(r, q));
}
MG_HD double cos_halfpi(double r) {
  const double r2 = mul(r, r);
  return horner(r2, -0x1.2a0c591af8314p-41, 0x1.20c62c2f2d7f5p-34, -0x1.b6e24f44b128fp-28, 0x1.f9d38a3763cc3p-22,
                -0x1.a6d1f2a204a8cp-16, 0x1.e1f506891babbp-11, -0x1.55d3c7e3cbffap-6, 0x1.03c1f081b5ac4p-2,
                -0x1.3bd3cc9be45dep+0, 1.0);
}

// sin (or cos) of 2 pi w / 2^24 for an integer w in [0, 2^24]. The quadrant is split off in
// integers, so the reduced argument is exact.
MG_HD float sincos_2pi_q24(uint32_t w, bool cosine) {
  const uint32_t q = (w + (1u << 21)) >> 22;                       // nearest multiple of 1/4 turn
  const float r = mul(float(int32_t(w) - int32_t(q << 22)), 0x1p-22f);  // exact, in [-1/2, 1/2)
  const uint32_t j = (q + (cosine ? 1u : 0u)) & 3u;                 // cos(x) = sin(x + pi/2)
  const float v = (j & 1u) ? cos_halfpi(r) : sin_halfpi(r);
  return (j & 2u) ? -v : v;
}

// The same for 2 pi w / 2^53, w in [0, 2^53].
MG_HD double sincos_2pi_q53(uint64_t w, bool cosine) {
  const uint64_t q = (w + (uint64_t(1) << 50)) >> 51;
  const double r = mul(double(int64_t(w) - int64_t(q << 51)), 0x1p-51);
  const uint64_t j = (q + (cosine ? 1u : 0u)) & 3u;
  const double v = (j & 1u) ? cos_halfpi(r) : sin_halfpi(r);
  return (j & 2u) ? -v : v;
}

}  // namespace mg::repro
