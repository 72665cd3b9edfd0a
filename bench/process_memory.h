#pragma once
// The process's resident memory as the kernel counts it (Linux /proc), for the benchmarks' peak
// memory figures. The same method is used on the PyTorch side (bench/torch_train.py), so the two
// peaks compare: both include the program's libraries and whatever its allocator keeps cached.
#include <cstddef>

namespace mg::bench {

// VmHWM: the peak resident set since start or since the last reset_peak_rss().
size_t peak_rss_bytes();
// VmRSS now.
size_t current_rss_bytes();
// Sets the peak to the current resident set (writes 5 to /proc/self/clear_refs). Returns false
// where the kernel refuses (then peak_rss_bytes() is the peak since start).
bool reset_peak_rss();

}  // namespace mg::bench
