// Kernels of the masked token mixing family. The mixing itself is GEMM work (ops/masked_mix.cpp
// drives Backend::gemm over row blocks); this file holds the triangular mask.
#include <algorithm>
#include <cstring>

#include "cpu/cpu_backend.h"
#include "cpu/dispatch.h"
#include "cpu/strided.h"

namespace mg::cpu {

void CpuBackend::tril(const Tensor& x, int64_t diagonal, const Tensor& out) {
  MG_CHECK(x.dim() >= 2, "cpu tril: expected at least 2 dims, got ", x.desc());
  const int64_t R = x.size(-2), C = x.size(-1);
  const int64_t rows = R == 0 ? 0 : x.numel() / C;  // all rows of all trailing matrices
  if (rows == 0 || C == 0) return;
  dispatch_dtype(x.dtype(), "tril", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = ptr<T>(x);
    T* op = ptr<T>(out);
#pragma omp parallel for schedule(static) if (rows * C >= kParallelGrain)
    for (int64_t g = 0; g < rows; ++g) {
      const int64_t r = g % R;
      // Row r keeps columns c <= r + diagonal.
      const int64_t keep = std::clamp<int64_t>(r + diagonal + 1, 0, C);
      const T* src = xp + g * C;
      T* dst = op + g * C;
      if (src != dst) std::memcpy(static_cast<void*>(dst), src, size_t(keep) * sizeof(T));
      std::fill(dst + keep, dst + C, T{});
    }
  });
}

}  // namespace mg::cpu
