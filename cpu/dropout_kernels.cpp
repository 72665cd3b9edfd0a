// Inverted dropout: element i of x is kept and scaled by 1 / (1 - p), or zeroed, by its Philox
// draw (core/philox.h, dropout_keep), the same draw as the CUDA kernel's. One multiply per kept
// element, rounded once, so both devices give the same bits.
#include <algorithm>

#include "core/philox.h"
#include "cpu/cpu_backend.h"
#include "cpu/dispatch.h"
#include "cpu/parallel.h"

namespace mg::cpu {

void CpuBackend::dropout(const Tensor& x, double p, uint64_t seed, uint64_t offset, const Tensor& out) {
  const int64_t n = x.numel();
  dispatch_float(x.dtype(), "dropout", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = ptr<T>(x);
    T* op = ptr<T>(out);
    const T scale = T(1.0 / (1.0 - p));
    // One Philox block gives the draws of four consecutive elements (uniform_f32 takes word i & 3
    // of block i >> 2), so each block is computed once, not once per element.
    parallel_elements(n, [&](int64_t b, int64_t e) __attribute__((always_inline)) {
      for (int64_t i0 = b & ~int64_t(3); i0 < e; i0 += 4) {
        const philox::U4 r = philox::philox4x32_10(uint64_t(i0) >> 2, offset, seed);
        const uint32_t w[4] = {r.x, r.y, r.z, r.w};
        for (int64_t j = std::max(b, i0); j < std::min(e, i0 + 4); ++j)
          op[j] = philox::dropout_keep_word(w[j - i0], p) ? xp[j] * scale : T(0);
      }
    });
  });
}

}  // namespace mg::cpu
