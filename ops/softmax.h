#pragma once
// Softmax, log-softmax and the fused softmax cross-entropy loss. Inputs may have any layout;
// outputs are contiguous. f32 and f64; differentiable in x / logits.
#include <cstdint>

#include "core/tensor.h"
#include "ops/reduction.h"

namespace mg {

// exp(x) / sum(exp(x)) along dim, computed stably (shifted by the max). The kernels work on the
// last dim; another dim is moved last and back (one copy each way).
Tensor softmax(const Tensor& x, int64_t dim = -1);
// x - logsumexp(x) along dim; stable for large |x|.
Tensor log_softmax(const Tensor& x, int64_t dim = -1);

// Cross-entropy of logits [..., V] against i32 class targets [...] (the logits' leading shape):
// per row, logsumexp(logits) - logits[target]. Rows whose target equals ignore_index contribute
// nothing and get zero gradient. Reduction::mean divides by the number of non-ignored rows (as
// torch); when every row is ignored it returns 0 with zero gradient (torch returns NaN there).
// Reduction::sum adds the rows; Reduction::none returns the [...] per-row losses (0 at ignored
// rows). A target outside [0, V) that is not ignore_index throws, naming it and its position.
// Fused: the forward keeps only each row's logsumexp (lse), the backward recomputes the softmax
// as exp(logits - lse); in f32 each probability so carries lse's rounding, a relative |lse| 2^-24
// (negligible for ordinary logits, ~1e-3 at |logits| ~ 1e4).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index = -100,
                     Reduction reduction = Reduction::mean);

}  // namespace mg
