#include "core/autocast_cache.h"

#include <atomic>
#include <unordered_map>
#include <vector>

namespace mg {
namespace {

struct Entry {
  std::weak_ptr<TensorImpl> source;  // detects a dead tensor whose address was reused
  const void* data = nullptr;        // detects a replaced storage (load_state_dict, .to())
  Shape strides;
  Tensor lowered;
};

// An activation's copy: weak on both sides, so the cache keeps neither tensor alive.
struct ActivationEntry {
  std::weak_ptr<Storage> source;  // detects a dead source whose address was reused
  int64_t offset = 0;
  Shape shape, strides;
  std::weak_ptr<Storage> lowered;  // contiguous, offset 0, shape `shape`
  DType dtype = DType::bf16;
  Device device;
};

// Bumped by every in-place write (any thread); a cache made under another epoch is stale.
std::atomic<uint64_t> g_write_epoch{0};

struct Cache {
  std::unordered_map<const TensorImpl*, Entry> entries;
  std::unordered_map<const Storage*, std::vector<ActivationEntry>> activations;
  size_t activation_stores = 0;  // since the last sweep of dead entries
  uint64_t epoch = 0;
  AutocastCacheStats stats;
};

void clear(Cache& c) {
  c.entries.clear();
  c.activations.clear();
  c.activation_stores = 0;
}

// This thread's cache, emptied first when an in-place write happened since it was filled.
Cache& cache() {
  thread_local Cache c;
  const uint64_t now = g_write_epoch.load(std::memory_order_acquire);
  if (c.epoch != now) {
    clear(c);
    c.epoch = now;
  }
  return c;
}

// Drops the activation entries whose source or copy has died (a long guard scope, as a generation
// loop, would otherwise collect one dead entry per forward).
void sweep(Cache& c) {
  for (auto it = c.activations.begin(); it != c.activations.end();) {
    auto& v = it->second;
    std::erase_if(v, [](const ActivationEntry& e) { return e.source.expired() || e.lowered.expired(); });
    it = v.empty() ? c.activations.erase(it) : std::next(it);
  }
  c.activation_stores = 0;
}

}  // namespace

AutocastCacheStats autocast_cache_stats() { return cache().stats; }

void autocast_clear_cache() { clear(cache()); }

void autocast_note_inplace_write() { g_write_epoch.fetch_add(1, std::memory_order_acq_rel); }

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

Tensor autocast_activation_find(const Tensor& t, DType dtype) {
  Cache& c = cache();
  auto it = c.activations.find(t.storage().get());
  if (it == c.activations.end()) return Tensor();
  for (const ActivationEntry& e : it->second) {
    if (e.dtype != dtype || e.offset != t.offset() || e.shape != t.shape() || e.strides != t.strides() ||
        e.device != t.device() || e.source.lock() != t.storage())
      continue;
    std::shared_ptr<Storage> low = e.lowered.lock();
    if (!low) continue;
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::move(low);
    impl->shape = e.shape;
    impl->strides = contiguous_strides(e.shape);
    impl->dtype = dtype;
    impl->device = e.device;
    ++c.stats.hits;
    return Tensor(std::move(impl));
  }
  return Tensor();
}

void autocast_activation_store(const Tensor& t, const Tensor& lowered) {
  MG_CHECK(lowered.is_contiguous() && lowered.offset() == 0 && lowered.shape() == t.shape(),
           "autocast cache: an activation's copy must be contiguous and of its shape, got ", lowered.desc());
  Cache& c = cache();
  if (++c.activation_stores >= 256) sweep(c);
  c.activations[t.storage().get()].push_back(ActivationEntry{t.storage(), t.offset(), t.shape(), t.strides(),
                                                             lowered.storage(), lowered.dtype(), t.device()});
}

void autocast_count_conversion() { ++cache().stats.conversions; }

}  // namespace detail
}  // namespace mg
