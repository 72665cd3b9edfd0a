#pragma once
// The causal language-model loss (docs/paper.md A.8).
#include <cstdint>

#include "core/tensor.h"

namespace mg {

// Shifted causal-LM cross-entropy: logits [B,T,V] against labels [B,T] (kIgnoreIndex at padding),
// predicting labels[:, 1:] from logits[:, :-1]. Reduction sum or mean over the scored positions.
Tensor shifted_lm_loss(const Tensor& logits, const Tensor& labels, bool sum = false);
// Number of positions shifted_lm_loss scores in labels [B, T].
int64_t count_scored(const Tensor& labels);

}  // namespace mg
