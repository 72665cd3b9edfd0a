#pragma once
#include <cstdint>

#include "core/factories.h"
#include "core/tensor.h"

namespace mg {

// Inverted dropout, as torch.nn.functional.dropout: in training each element of x is kept with
// probability 1 - p and scaled by 1 / (1 - p), or set to 0, so the expected output is x; with
// training false or p == 0 it returns x itself (no copy, no node). 0 <= p <= 1 (p == 1 drops
// everything). The paper's autoencoders use p = 0.05 and its GPT-1 baseline 0.1 (docs/paper.md
// A.1, B.2; no model here uses dropout, docs/paper.md I).
//
// The mask is drawn from Philox (core/philox.h, dropout_keep): element i (x's row-major index) is
// kept by a pure function of (seed, offset, i), the same on CPU and CUDA and for f32 and f64.
// A dropped element is exactly 0 even where x is inf or NaN (torch's x * mask would give NaN).
// Any layout; f32 or f64 (bf16 is widened under autocast). Returns a contiguous tensor.
Tensor dropout(const Tensor& x, double p, bool training, uint64_t seed, uint64_t offset);
// The same with the next offset of `gen` (one per call, as the random factories take them).
Tensor dropout(const Tensor& x, double p, bool training, Generator& gen);

}  // namespace mg
