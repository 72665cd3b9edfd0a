#pragma once
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"), the counter-based
// generator that cuRAND also uses. Element i of a random tensor is a pure function of
// (seed, offset, i), so the CPU and CUDA kernels draw bit-identical numbers for the same seed.
// This header compiles in both host and device code and includes no CUDA header.
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MG_HD __host__ __device__ __forceinline__
#else
#define MG_HD inline
#endif

namespace mg::philox {

struct U4 {
  uint32_t x, y, z, w;
};

MG_HD uint32_t mulhilo(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = uint64_t(a) * uint64_t(b);
  *hi = uint32_t(p >> 32);
  return uint32_t(p);
}

// counter = (ctr_lo, ctr_hi) as 2x32 bits each; key = seed.
MG_HD U4 philox4x32_10(uint64_t counter, uint64_t subsequence, uint64_t seed) {
  U4 c{uint32_t(counter), uint32_t(counter >> 32), uint32_t(subsequence), uint32_t(subsequence >> 32)};
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo(0xD2511F53u, c.x, &hi0);
    uint32_t lo1 = mulhilo(0xCD9E8D57u, c.z, &hi1);
    c = U4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return c;
}

// Uniform in (0, 1]: never 0, so log() in Box-Muller is finite. 24 random bits.
MG_HD float u01(uint32_t v) { return float((v >> 8) + 1) * (1.0f / 16777216.0f); }
// Uniform in (0, 1] with 53 random bits from two words.
MG_HD double u01_f64(uint32_t a, uint32_t b) {
  uint64_t v = (uint64_t(a) << 21) ^ uint64_t(b >> 11);
  v &= (uint64_t(1) << 53) - 1;
  return double(v + 1) * (1.0 / 9007199254740992.0);
}

// The i-th uniform in [0,1) as float, the i-th standard normal (Box-Muller on the pair that
// element i belongs to), and the i-th integer in [lo, hi). `offset` lets callers draw
// non-overlapping streams from one seed. f64 draws use their own counter space.
MG_HD float uniform_f32(uint64_t seed, uint64_t offset, uint64_t i) {
  U4 r = philox4x32_10(i >> 2, offset, seed);
  uint32_t w = (i & 3) == 0 ? r.x : (i & 3) == 1 ? r.y : (i & 3) == 2 ? r.z : r.w;
  return 1.0f - u01(w);  // [0, 1)
}

MG_HD float normal_f32(uint64_t seed, uint64_t offset, uint64_t i) {
  U4 r = philox4x32_10(i >> 2, offset, seed);
  bool second_pair = (i & 2) != 0;
  float u1 = u01(second_pair ? r.z : r.x), u2 = u01(second_pair ? r.w : r.y);
  float rad = sqrtf(-2.0f * logf(u1));
  float ang = 6.2831853071795864f * u2;
  return (i & 1) ? rad * sinf(ang) : rad * cosf(ang);
}

MG_HD double uniform_f64(uint64_t seed, uint64_t offset, uint64_t i) {
  U4 r = philox4x32_10(i >> 1, offset ^ 0x8000000000000000ull, seed);
  return (i & 1) ? 1.0 - u01_f64(r.z, r.w) : 1.0 - u01_f64(r.x, r.y);
}

MG_HD double normal_f64(uint64_t seed, uint64_t offset, uint64_t i) {
  U4 r = philox4x32_10(i >> 1, offset ^ 0x8000000000000000ull, seed);
  double u1 = u01_f64(r.x, r.y), u2 = u01_f64(r.z, r.w);
  double rad = sqrt(-2.0 * log(u1));
  double ang = 6.283185307179586476925 * u2;
  return (i & 1) ? rad * sin(ang) : rad * cos(ang);
}

MG_HD int32_t randint(uint64_t seed, uint64_t offset, uint64_t i, int32_t lo, int32_t hi) {
  U4 r = philox4x32_10(i >> 1, offset ^ 0x4000000000000000ull, seed);
  uint64_t v = (i & 1) ? (uint64_t(r.z) << 32 | r.w) : (uint64_t(r.x) << 32 | r.y);
  uint64_t range = uint64_t(int64_t(hi) - int64_t(lo));
  return int32_t(int64_t(lo) + int64_t(v % range));
}

}  // namespace mg::philox
