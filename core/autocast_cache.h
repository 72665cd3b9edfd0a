#pragma once
// The autocast weight cache (as torch.autocast's): under an AutocastGuard, the bf16 copy of an f32
// leaf tensor that requires grad (a parameter) is converted once and reused by every later use in
// the same outermost enabled guard scope, forward and validation alike. The cache holds raw data
// only; ops/autocast_policy records a separate cast node per use, so gradients are exactly those
// of uncached casts.
//
// The cache is per thread and emptied when the outermost enabled AutocastGuard ends, by
// autocast_clear_cache() (Optimizer::step calls it, since it writes parameters in place), and an
// entry is dropped when its tensor dies or its storage is replaced. Other in-place writes to a
// parameter inside one guard scope are not seen: call autocast_clear_cache() after them.
#include <cstdint>

#include "core/tensor.h"

namespace mg {

// Counters of this thread since it started (for tests and profiling): f32 -> lower-precision
// conversions autocast ran, and the uses of a parameter that found its copy in the cache.
struct AutocastCacheStats {
  int64_t conversions = 0;
  int64_t hits = 0;
};
AutocastCacheStats autocast_cache_stats();

// Drops every cached copy of this thread.
void autocast_clear_cache();

namespace detail {
// Whether `t` may be cached: defined, f32, a leaf that requires grad.
bool autocast_cacheable(const Tensor& t);
// The cached raw copy of `t` in `dtype`, or an undefined tensor (counts a hit when found).
Tensor autocast_cache_find(const Tensor& t, DType dtype);
// Remembers `lowered` (raw, no autograd) as the copy of `t`.
void autocast_cache_store(const Tensor& t, const Tensor& lowered);
// Counts one conversion autocast ran (cached or not).
void autocast_count_conversion();
}  // namespace detail

}  // namespace mg
