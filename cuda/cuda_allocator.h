#pragma once
// The CUDA backend's caching device allocator. Freed blocks go to a free list keyed by their
// size class and are handed out again for the next request of that class, so steady-state
// training does no cudaMalloc/cudaFree. Safe to reuse immediately: every kernel and copy runs on
// the backend's one stream, so work queued before a free finishes before work queued after it.
// This header includes no CUDA header: tests and tools may read the statistics.
#include <cstddef>
#include <cstdint>

namespace mg::cuda {

struct AllocatorStats {
  size_t bytes_in_use = 0;       // size-class bytes of live blocks
  size_t peak_bytes_in_use = 0;  // maximum of bytes_in_use since start or reset_peak_stats()
  size_t bytes_cached = 0;       // free blocks held for reuse
  size_t bytes_reserved = 0;     // in use + cached: what cudaMalloc has handed out and not got back
  int64_t device_mallocs = 0;    // cudaMalloc calls made
  int64_t cache_hits = 0;        // requests served from a free list
};

// Requests round up to a size class: a multiple of 512 B up to 1 MiB, of 2 MiB above.
size_t allocation_size_class(size_t nbytes);

// A block of at least nbytes of device memory (nullptr for 0). On cudaMalloc failure the cache
// is released and the call retried once; a second failure throws mg::Error naming the size.
void* device_allocate(size_t nbytes);
// Returns a block from device_allocate to its free list (nullptr is ignored).
void device_free(void* ptr);

AllocatorStats allocator_stats();
void reset_peak_stats();
// Gives every cached (free) block back to CUDA; live blocks are untouched.
void empty_cache();

}  // namespace mg::cuda
