#pragma once
// The autocast cache. Under an AutocastGuard:
//  - Parameters (as torch.autocast's weight cache): the bf16 copy of an f32 leaf tensor that
//    requires grad is converted once and reused by every later use in the same outermost enabled
//    guard scope, forward and validation alike.
//  - Activations (every other f32 tensor): a copy is reused while something else still holds it,
//    typically a matmul that saved it for backward, so one tensor feeding several matmuls (a
//    Llama layer's q, k and v projections) is converted once and saved once. The cache never
//    holds an activation's copy alive itself, so it costs no memory.
// The cache holds raw data only; ops/autocast_policy records a separate cast node per use, so
// gradients are exactly those of uncached casts, and values are bitwise the same.
//
// The cache is per thread and emptied when the outermost enabled AutocastGuard ends, by
// autocast_clear_cache() (Optimizer::step calls it, since it writes parameters in place), and by
// any in-place write through ops/inplace.h (assign_, fill_), on any thread. An entry is dropped
// when its tensor dies or its storage is replaced. Writes through raw data pointers are not seen:
// call autocast_clear_cache() after them.
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
// Invalidates every cached copy on every thread (ops/inplace.h calls it before each write).
void autocast_note_inplace_write();

namespace detail {
// Whether `t` may be cached: defined, f32, a leaf that requires grad.
bool autocast_cacheable(const Tensor& t);
// The cached raw copy of `t` in `dtype`, or an undefined tensor (counts a hit when found).
Tensor autocast_cache_find(const Tensor& t, DType dtype);
// Remembers `lowered` (raw, no autograd) as the copy of `t`.
void autocast_cache_store(const Tensor& t, const Tensor& lowered);
// The same pair for activations (any f32 tensor that is not cacheable): keyed by the storage and
// geometry of `t`, found only while `lowered`'s storage is still alive elsewhere.
Tensor autocast_activation_find(const Tensor& t, DType dtype);
void autocast_activation_store(const Tensor& t, const Tensor& lowered);
// Counts one conversion autocast ran (cached or not).
void autocast_count_conversion();
}  // namespace detail

}  // namespace mg
