#include "cuda/cuda_allocator.h"

#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda/cuda_errors.h"

namespace mg::cuda {
namespace {

constexpr size_t kSmallGranule = 512;
constexpr size_t kSmallLimit = size_t(1) << 20;
constexpr size_t kLargeGranule = size_t(2) << 20;

struct CachingAllocator {
  std::mutex mu;
  std::map<size_t, std::vector<void*>> free_blocks;  // size class -> cached blocks
  std::unordered_map<void*, size_t> live;            // block -> size class
  AllocatorStats stats;

  void release_cache_locked() {
    for (auto& [size, blocks] : free_blocks) {
      for (void* p : blocks) {
        CUDA_CHECK(cudaFree(p), "empty_cache");
        stats.bytes_cached -= size;
        stats.bytes_reserved -= size;
      }
    }
    free_blocks.clear();
  }

  void* allocate(size_t nbytes) {
    if (nbytes == 0) return nullptr;
    const size_t size = allocation_size_class(nbytes);
    std::lock_guard<std::mutex> lock(mu);
    void* p = nullptr;
    auto it = free_blocks.find(size);
    if (it != free_blocks.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      stats.bytes_cached -= size;
      ++stats.cache_hits;
    } else {
      cudaError_t err = cudaMalloc(&p, size);
      if (err == cudaErrorMemoryAllocation) {
        (void)cudaGetLastError();  // cudaMalloc's failure would otherwise show up at the next launch check
        release_cache_locked();
        err = cudaMalloc(&p, size);
      }
      if (err != cudaSuccess) {
        (void)cudaGetLastError();
        throw Error("cuda: cannot allocate " + std::to_string(nbytes) + " bytes (size class " +
                    std::to_string(size) + ") of device memory: " + cudaGetErrorString(err) + "; " +
                    std::to_string(stats.bytes_in_use) + " bytes in use by tensors, cache emptied");
      }
      ++stats.device_mallocs;
      stats.bytes_reserved += size;
    }
    live.emplace(p, size);
    stats.bytes_in_use += size;
    if (stats.bytes_in_use > stats.peak_bytes_in_use) stats.peak_bytes_in_use = stats.bytes_in_use;
    return p;
  }

  void free(void* p) {
    if (!p) return;
    std::lock_guard<std::mutex> lock(mu);
    auto it = live.find(p);
    MG_CHECK(it != live.end(), "cuda: freeing a pointer the caching allocator did not hand out");
    const size_t size = it->second;
    live.erase(it);
    free_blocks[size].push_back(p);
    stats.bytes_in_use -= size;
    stats.bytes_cached += size;
  }
};

// Never destroyed: tensors may be freed during static destruction, after the CUDA runtime has
// begun tearing down, and cached blocks go back to the driver with the process anyway.
CachingAllocator& allocator() {
  static CachingAllocator* a = new CachingAllocator;
  return *a;
}

}  // namespace

size_t allocation_size_class(size_t nbytes) {
  if (nbytes <= kSmallLimit) return (nbytes + kSmallGranule - 1) / kSmallGranule * kSmallGranule;
  return (nbytes + kLargeGranule - 1) / kLargeGranule * kLargeGranule;
}

void* device_allocate(size_t nbytes) { return allocator().allocate(nbytes); }
void device_free(void* ptr) { allocator().free(ptr); }

AllocatorStats allocator_stats() {
  std::lock_guard<std::mutex> lock(allocator().mu);
  return allocator().stats;
}

void reset_peak_stats() {
  std::lock_guard<std::mutex> lock(allocator().mu);
  allocator().stats.peak_bytes_in_use = allocator().stats.bytes_in_use;
}

void empty_cache() {
  std::lock_guard<std::mutex> lock(allocator().mu);
  allocator().release_cache_locked();
}

}  // namespace mg::cuda
