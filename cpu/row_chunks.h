#pragma once
// Column sums over the rows of a [rows, D] result, reproducible on any thread count: rows are cut
// into chunks fixed by the row count alone (never the thread count), each chunk sums its rows in
// row order into its own partial, and the partials are added in chunk order. No atomics, no
// dependence on scheduling (the CPU backend's determinism contract, core/determinism.h).
#include <algorithm>
#include <cstdint>
#include <vector>

namespace mg::cpu {

// Rows per partial-sum chunk: at most kMaxChunks chunks, enough to keep every thread busy.
constexpr int64_t kMaxChunks = 64;
inline int64_t chunk_rows(int64_t rows) { return std::max<int64_t>(1, (rows + kMaxChunks - 1) / kMaxChunks); }
inline int64_t chunk_count(int64_t rows) { return (rows + chunk_rows(rows) - 1) / chunk_rows(rows); }

// out[j] = sum over chunks of part[chunk * stride + j], in chunk order, accumulated in double.
template <class T>
void reduce_chunks(const T* part, int64_t nchunks, int64_t stride, int64_t D, T* out) {
  std::vector<double> acc(size_t(D), 0.0);
  for (int64_t k = 0; k < nchunks; ++k) {
    const T* p = part + k * stride;
#pragma omp simd
    for (int64_t j = 0; j < D; ++j) acc[size_t(j)] += double(p[j]);
  }
  for (int64_t j = 0; j < D; ++j) out[j] = T(acc[size_t(j)]);
}

}  // namespace mg::cpu
