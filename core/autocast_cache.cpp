#include "core/autocast_cache.h"

#include <unordered_map>

namespace mg {
namespace {

struct Entry {
  std::weak_ptr<TensorImpl> source;  // detects a dead tensor whose address was reused
  const void* data = nullptr;        // detects a replaced storage (load_state_dict, .to())
  Shape strides;
  Tensor lowered;
};

struct Cache {
  std::unordered_map<const TensorImpl*, Entry> entries;
  AutocastCacheStats stats;
};

Cache& cache() {
  thread_local Cache c;
  return c;
}

}  // namespace

AutocastCacheStats autocast_cache_stats() { return cache().stats; }

void autocast_clear_cache() { cache().entries.clear(); }

namespace detail {

bool autocast_cacheable(const Tensor& t) {
  return t.defined() && t.dtype() == DType::f32 && t.is_leaf() && t.requires_grad();
}

Tensor autocast_cache_find(const Tensor& t, DType dtype) {
  Cache& c = cache();
  auto it = c.entries.find(t.impl());
  if (it == c.entries.end()) return Tensor();
  const Entry& e = it->second;
  if (e.source.lock() != t.impl_ptr() || e.data != t.raw_data() || e.lowered.dtype() != dtype ||
      e.lowered.shape() != t.shape() || e.strides != t.strides() || e.lowered.device() != t.device()) {
    c.entries.erase(it);
    return Tensor();
  }
  ++c.stats.hits;
  return e.lowered;
}

void autocast_cache_store(const Tensor& t, const Tensor& lowered) {
  cache().entries[t.impl()] = Entry{t.impl_ptr(), t.raw_data(), t.strides(), lowered};
}

void autocast_count_conversion() { ++cache().stats.conversions; }

}  // namespace detail
}  // namespace mg
