#pragma once
// An OpenMP loop over independent items that may throw: body(i) for i in [0, n) on the
// OpenMP threads (dynamic schedule, for items of uneven cost such as texts to tokenize or pools
// to score); the first exception thrown by any item is rethrown on the calling thread after
// the loop, since an exception may not leave an OpenMP region.
#include <cstdint>
#include <exception>
#include <mutex>

namespace mg {

template <class F>
void parallel_for(int64_t n, F&& body) {
  std::exception_ptr error;
  std::mutex m;
#pragma omp parallel for schedule(dynamic, 16)
  for (int64_t i = 0; i < n; ++i) {
    try {
      body(i);
    } catch (...) {
      std::lock_guard<std::mutex> lock(m);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace mg
