#pragma once
// Strided iteration for CPU kernels: walks a shape with up to three operands' strides, merging
// dims that are contiguous for every operand, and hands the innermost run to a callback.
// Rows are split across OpenMP threads when the tensor is large enough to pay for it.
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstdint>

#include "core/shape.h"
#include "cpu/parallel.h"

namespace mg::cpu {

template <int N>
struct StridedLayout {
  Shape shape;
  std::array<Shape, N> strides;
};

template <int N>
StridedLayout<N> coalesce(const Shape& shape, const std::array<Shape, N>& strides) {
  StridedLayout<N> out;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!out.shape.empty()) {
      bool merge = true;
      for (int k = 0; k < N; ++k) merge = merge && out.strides[k].back() == strides[k][d] * shape[d];
      if (merge) {
        out.shape.back() *= shape[d];
        for (int k = 0; k < N; ++k) out.strides[k].back() = strides[k][d];
        continue;
      }
    }
    out.shape.push_back(shape[d]);
    for (int k = 0; k < N; ++k) out.strides[k].push_back(strides[k][d]);
  }
  if (out.shape.empty()) {
    out.shape.push_back(1);
    for (int k = 0; k < N; ++k) out.strides[k].push_back(0);
  }
  return out;
}

// f(std::array<int64_t,N> offsets, int64_t inner_len, std::array<int64_t,N> inner_strides), called
// once per run of elements; f must treat elements independently: a run may be part of a row
// (a contiguous tensor coalesces into one row, which is split so that every thread gets a share).
template <int N, class F>
void for_each_row(const Shape& shape, const std::array<Shape, N>& strides, F&& f) {
  StridedLayout<N> L = coalesce<N>(shape, strides);
  const int nd = int(L.shape.size());
  const int64_t inner = L.shape[nd - 1];
  std::array<int64_t, N> istr;
  for (int k = 0; k < N; ++k) istr[k] = L.strides[k][nd - 1];
  int64_t rows = 1;
  for (int d = 0; d < nd - 1; ++d) rows *= L.shape[d];
  const bool par = rows * inner >= kParallelGrain && !omp_in_parallel();
  // Fewer rows than threads: cut rows into pieces of at least kParallelGrain / 4 elements.
  const int nth = par ? omp_get_max_threads() : 1;
  const int64_t pieces = rows >= nth ? 1 : std::max<int64_t>(1, std::min<int64_t>((nth + rows - 1) / rows,
                                                                                     inner / (kParallelGrain / 4)));
  const int64_t piece_len = (inner + pieces - 1) / pieces;
#pragma omp parallel for schedule(static) if (par && rows * pieces > 1)
  for (int64_t u = 0; u < rows * pieces; ++u) {
    const int64_t r = u / pieces, p = u % pieces;
    std::array<int64_t, N> off{};
    int64_t rem = r;
    for (int d = nd - 2; d >= 0; --d) {
      int64_t i = rem % L.shape[d];
      rem /= L.shape[d];
      for (int k = 0; k < N; ++k) off[k] += i * L.strides[k][d];
    }
    const int64_t begin = p * piece_len, len = std::min(inner, begin + piece_len) - begin;
    if (len <= 0) continue;
    for (int k = 0; k < N; ++k) off[k] += begin * istr[k];
    f(off, len, istr);
  }
}

}  // namespace mg::cpu
