#pragma once
// Run-time ISA selection for the fused CPU kernels: a kernel body (a lambda over [begin, end)) is
// compiled for AVX-512, AVX2+FMA and the baseline ISA and the best one the CPU has runs, so the
// library needs no -march flag. MG_KERNEL_ISA=base|avx2|avx512 forces a lower path (tests use it
// to cover the other code paths; an ISA the CPU lacks is ignored).
#include <cstdint>
#include <cstdlib>
#include <string>

// Kernel bodies' helpers are always inlined so that the target attribute of run_isa's wrappers
// applies to them too.
#ifndef MG_ALWAYS_INLINE
#define MG_ALWAYS_INLINE inline __attribute__((always_inline))
#endif

namespace mg::cpu {

enum class Isa { base, avx2, avx512 };

// The CPU's best ISA, or a lower one named by MG_KERNEL_ISA=base|avx2|avx512 (for testing the
// other code paths; an ISA the CPU lacks is ignored).
inline Isa detect_isa() {
  Isa best = Isa::base;
#if defined(__x86_64__) && defined(__GNUC__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq"))
    best = Isa::avx512;
  else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    best = Isa::avx2;
#endif
  const char* want = std::getenv("MG_KERNEL_ISA");
  if (want == nullptr) return best;
  const std::string w = want;
  const Isa asked = w == "base" ? Isa::base : w == "avx2" ? Isa::avx2 : Isa::avx512;
  return asked < best ? asked : best;
}

#if defined(__x86_64__) && defined(__GNUC__)
template <class F>
__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))) void run_avx512(const F& f, int64_t b,
                                                                                       int64_t e) {
  f(b, e);
}
template <class F>
__attribute__((target("avx2,fma"))) void run_avx2(const F& f, int64_t b, int64_t e) {
  f(b, e);
}
#endif

template <class F>
void run_isa(const F& f, int64_t b, int64_t e) {
  static const Isa isa = detect_isa();
#if defined(__x86_64__) && defined(__GNUC__)
  if (isa == Isa::avx512) return run_avx512(f, b, e);
  if (isa == Isa::avx2) return run_avx2(f, b, e);
#endif
  f(b, e);
}

}  // namespace mg::cpu
