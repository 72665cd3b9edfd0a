#include "cpu/cpu_allocator.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"

namespace mg::cpu {

namespace {

constexpr size_t kCacheMin = size_t(1) << 18;       // blocks from 256 KiB up are cached
constexpr size_t kGranule = size_t(1) << 16;        // ... in sizes rounded to 64 KiB
constexpr size_t kCacheLimit = size_t(2) << 30;     // never hold more than 2 GiB unused

struct Cache {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_blocks;
  HostCacheStats stats;
};

Cache& cache() {
  static Cache* c = new Cache;  // never destroyed: tensors may be freed during static destruction
  return *c;
}

size_t rounded(size_t n) { return n < kCacheMin ? (n + 63) / 64 * 64 : (n + kGranule - 1) / kGranule * kGranule; }

void* os_allocate(size_t n) {
  void* p = std::aligned_alloc(64, n);  // 64 bytes: AVX-512 loads, cache-line aligned panels
  if (!p) {
    host_empty_cache();
    p = std::aligned_alloc(64, n);
  }
  if (!p) throw Error("cpu: out of memory allocating " + std::to_string(n) + " bytes");
  return p;
}

}  // namespace

void* host_allocate(size_t nbytes) {
  const size_t n = rounded(nbytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.stats.bytes_in_use += n;
    c.stats.peak_bytes_in_use = std::max(c.stats.peak_bytes_in_use, c.stats.bytes_in_use);
    if (n >= kCacheMin) {
      auto it = c.free_blocks.find(n);
      if (it != c.free_blocks.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        c.stats.bytes_cached -= n;
        ++c.stats.hits;
        return p;
      }
      ++c.stats.misses;
    }
  }
  return os_allocate(n);
}

void host_free(void* ptr, size_t nbytes) {
  if (!ptr) return;
  const size_t n = rounded(nbytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    c.stats.bytes_in_use -= n;
  }
  if (n >= kCacheMin) {
    std::lock_guard<std::mutex> lock(c.mu);
    if (c.stats.bytes_cached + n <= kCacheLimit) {
      c.free_blocks[n].push_back(ptr);
      c.stats.bytes_cached += n;
      return;
    }
  }
  std::free(ptr);
}

HostCacheStats host_cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  return c.stats;
}

void host_reset_peak() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  c.stats.peak_bytes_in_use = c.stats.bytes_in_use;
}

void host_empty_cache() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mu);
  for (auto& [n, blocks] : c.free_blocks)
    for (void* p : blocks) std::free(p);
  c.free_blocks.clear();
  c.stats.bytes_cached = 0;
}

}  // namespace mg::cpu
