#pragma once
// Host memory for the CPU backend. Large blocks (activations, gradients) are cached by size and
// reused: a training step allocates the same sizes every time, and a fresh block from the OS
// costs a page fault per 4 KiB on first touch, which for big tensors dwarfs the kernels' work.
// Small blocks go straight to the C allocator. Thread-safe.
#include <cstddef>

namespace mg::cpu {

void* host_allocate(size_t nbytes);
void host_free(void* ptr, size_t nbytes);

struct HostCacheStats {
  size_t bytes_cached = 0;  // held in free lists, ready for reuse
  size_t hits = 0, misses = 0;
  size_t bytes_in_use = 0;       // handed out to tensors now (rounded sizes)
  size_t peak_bytes_in_use = 0;  // maximum of bytes_in_use since the last reset
};
HostCacheStats host_cache_stats();
void host_reset_peak();  // peak_bytes_in_use = bytes_in_use
void host_empty_cache();  // returns every cached block to the OS

}  // namespace mg::cpu
