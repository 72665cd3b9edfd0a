#pragma once
// Threaded loops of the fused CPU kernels: each thread gets one contiguous range of [0, n) and
// runs the kernel body on it through run_isa (the body compiled for the CPU's best ISA). The
// ranges depend only on n and the thread count, and each index is handled by exactly one thread,
// so a kernel whose per-index work does not depend on its neighbours gives the same bits on any
// number of threads.
#include <omp.h>

#include <cstdint>

#include "cpu/isa_dispatch.h"

namespace mg::cpu {

constexpr int64_t kParallelGrain = 32768;  // elements below which threads cost more than they save

// f(begin, end) over one contiguous range of rows [0, rows) per thread; `work` (elements touched)
// decides whether threads pay. With fewer than two rows or too little work, f(0, rows) runs on
// the calling thread.
template <class F>
void parallel_rows(int64_t rows, int64_t work, const F& f) {
  if (rows < 2 || work < kParallelGrain) {
    if (rows > 0) run_isa(f, 0, rows);
    return;
  }
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t b = rows * id / nt, e = rows * (id + 1) / nt;
    if (b < e) run_isa(f, b, e);
  }
}

// f(begin, end) over one contiguous range of elements [0, n) per thread; the ranges start on
// 16-element boundaries so threads never share a cache line of the output.
template <class F>
void parallel_elements(int64_t n, const F& f) {
  if (n < kParallelGrain) {
    if (n > 0) run_isa(f, 0, n);
    return;
  }
#pragma omp parallel
  {
    const int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
    const int64_t b = id == 0 ? 0 : (n * id / nt) & ~int64_t(15);
    const int64_t e = id == nt - 1 ? n : (n * (id + 1) / nt) & ~int64_t(15);
    if (b < e) run_isa(f, b, e);
  }
}

}  // namespace mg::cpu
