#pragma once
// bf16 loads and stores for fused CPU kernels: a kernel body written once over a storage type S
// computes in compute_t<S> (float for bf16: widened exactly, rounded once on the way out, the
// rule of core/dtype.h and of the CUDA backend). Branch-free bit manipulation, so loops over
// them vectorise under `omp simd`.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "core/dtype.h"
#include "cpu/isa_dispatch.h"  // MG_ALWAYS_INLINE

namespace mg::cpu {

template <class S>
using compute_t = std::conditional_t<std::is_same_v<S, bf16>, float, S>;

template <class S>
MG_ALWAYS_INLINE compute_t<S> widen(S v) {
  if constexpr (std::is_same_v<S, bf16>) {
    const uint32_t u = uint32_t(v.bits) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  } else {
    return v;
  }
}

// Round to nearest even, NaN kept a quiet NaN: bf16::from_float without its branch.
MG_ALWAYS_INLINE uint16_t bf16_bits_rne(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  return uint16_t((u & 0x7fffffffu) > 0x7f800000u ? ((u >> 16) | 0x40u) : rounded);
}

template <class S>
MG_ALWAYS_INLINE S narrow(compute_t<S> v) {
  if constexpr (std::is_same_v<S, bf16>) {
    S out;
    out.bits = bf16_bits_rne(v);
    return out;
  } else {
    return v;
  }
}

// widen(narrow<S>(v)) on values only: the number S stores for v. Written on the bits rather than
// through an S temporary, which GCC 12 does not vectorise inside a loop that also stores the S.
template <class S>
MG_ALWAYS_INLINE compute_t<S> stored_value(compute_t<S> v) {
  if constexpr (std::is_same_v<S, bf16>) {
    const uint32_t u = uint32_t(bf16_bits_rne(v)) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  } else {
    return v;
  }
}

}  // namespace mg::cpu
