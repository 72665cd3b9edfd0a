#pragma once
// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"), the counter-based
// generator that cuRAND also uses. Element i of a random tensor is a pure function of
// (seed, offset, i), so the CPU and CUDA kernels draw bit-identical numbers for the same seed.
// Normals too: Box-Muller is evaluated with core/repro_math.h, whose log/sin/cos give the same
// bits on every host and device (libm's and CUDA's logf/sinf would differ in the last bit now and
// then). This header compiles in both host and device code and includes no CUDA header.
#include <cstdint>

#include "core/repro_math.h"

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

// Uniform in (0, 1]: never 0, so log() in Box-Muller is finite. 24 random bits: the value is
// q24(v) / 2^24 with the integer q24(v) in [1, 2^24].
MG_HD uint32_t q24(uint32_t v) { return (v >> 8) + 1; }
MG_HD float u01(uint32_t v) { return float(q24(v)) * (1.0f / 16777216.0f); }
// Uniform in (0, 1] with 53 random bits from two words: q53(a, b) / 2^53, q53 in [1, 2^53].
MG_HD uint64_t q53(uint32_t a, uint32_t b) {
  uint64_t v = (uint64_t(a) << 21) ^ uint64_t(b >> 11);
  v &= (uint64_t(1) << 53) - 1;
  return v + 1;
}
MG_HD double u01_f64(uint32_t a, uint32_t b) { return double(q53(a, b)) * (1.0 / 9007199254740992.0); }

// Box-Muller from the random words of one pair: sqrt(-2 log u1) times cos (first of the pair) or
// sin (second) of 2 pi u2, with u1 = u01(a1), u2 = u01(a2) (f32), or u1 = u01_f64(a1, b1),
// u2 = u01_f64(a2, b2) (f64). Identical bits on CPU and GPU; within a few ulp of the exact value.
MG_HD float box_muller_f32(uint32_t a1, uint32_t a2, bool second) {
  const float rad = repro::sqrt(repro::mul(-2.0f, repro::log(u01(a1))));
  return repro::mul(rad, repro::sincos_2pi_q24(q24(a2), !second));
}
MG_HD double box_muller_f64(uint32_t a1, uint32_t b1, uint32_t a2, uint32_t b2, bool second) {
  const double rad = repro::sqrt(repro::mul(-2.0, repro::log(u01_f64(a1, b1))));
  return repro::mul(rad, repro::sincos_2pi_q53(q53(a2, b2), !second));
}

// The [0, 1) float of one random word: uniform_f32 of the element that word is drawn for.
MG_HD float uniform_f32_of_word(uint32_t w) { return 1.0f - u01(w); }
// The i-th uniform in [0,1) as float, the i-th standard normal (Box-Muller on the pair that
// element i belongs to), and the i-th integer in [lo, hi). `offset` lets callers draw
// non-overlapping streams from one seed. f64 draws use their own counter space.
MG_HD float uniform_f32(uint64_t seed, uint64_t offset, uint64_t i) {
  U4 r = philox4x32_10(i >> 2, offset, seed);
  uint32_t w = (i & 3) == 0 ? r.x : (i & 3) == 1 ? r.y : (i & 3) == 2 ? r.z : r.w;
  return uniform_f32_of_word(w);
}

MG_HD float normal_f32(uint64_t seed, uint64_t offset, uint64_t i) {
  U4 r = philox4x32_10(i >> 2, offset, seed);
  const bool second_pair = (i & 2) != 0;
  return box_muller_f32(second_pair ? r.z : r.x, second_pair ? r.w : r.y, (i & 1) != 0);
}

MG_HD double uniform_f64(uint64_t seed, uint64_t offset, uint64_t i) {
  U4 r = philox4x32_10(i >> 1, offset ^ 0x8000000000000000ull, seed);
  return (i & 1) ? 1.0 - u01_f64(r.z, r.w) : 1.0 - u01_f64(r.x, r.y);
}

MG_HD double normal_f64(uint64_t seed, uint64_t offset, uint64_t i) {
  U4 r = philox4x32_10(i >> 1, offset ^ 0x8000000000000000ull, seed);
  return box_muller_f64(r.x, r.y, r.z, r.w, (i & 1) != 0);
}

MG_HD int32_t randint(uint64_t seed, uint64_t offset, uint64_t i, int32_t lo, int32_t hi) {
  U4 r = philox4x32_10(i >> 1, offset ^ 0x4000000000000000ull, seed);
  uint64_t v = (i & 1) ? (uint64_t(r.z) << 32 | r.w) : (uint64_t(r.x) << 32 | r.y);
  uint64_t range = uint64_t(int64_t(hi) - int64_t(lo));
  return int32_t(int64_t(lo) + int64_t(v % range));
}

// Dropout's mask: element i is kept when its f32 uniform (a multiple of 2^-24 in [0, 1)) is
// >= p, so P(keep) = 1 - p to within 2^-24, whatever the dtype of the tensor masked. The
// comparison is exact, so every host and device keeps the same elements.
// dropout_keep_word: the same test on the draw's random word w, for kernels that take the four
// words of one Philox block at once.
MG_HD bool dropout_keep_word(uint32_t w, double p) { return double(uniform_f32_of_word(w)) >= p; }
MG_HD bool dropout_keep(uint64_t seed, uint64_t offset, uint64_t i, double p) {
  return double(uniform_f32(seed, offset, i)) >= p;
}

}  // namespace mg::philox
