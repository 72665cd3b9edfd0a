#pragma once
// The scoring model of the frozen-embedding retrieval method (docs/paper.md E.2): a
// bidirectional mixer over the sequence [query, c - 1 candidates] of fixed embeddings that
// scores each candidate.
#include <cstdint>

#include "core/factories.h"
#include "nn/layers.h"
#include "nn/module.h"

namespace mg {

// A.1's block with an UNMASKED token mixing Conv1d(c, c, 1) (+ bias) along the sample axis:
// y = x + W LN(x) + b;  out = y + FF(LN(y)).
class BidirectionalMixerBlock : public Module {
 public:
  BidirectionalMixerBlock(int64_t dim, int64_t samples, Generator& gen, TensorOptions opts = {});
  Tensor forward(const Tensor& x) const;  // [B, c, d] -> [B, c, d]
  LayerNorm patch_layernorm, seq_layernorm;
  FeedForward patch_ff;
  Tensor conv_weight, conv_bias;  // [c, c, 1], [c] (torch Conv1d layout and init)
};

class RetrievalMixer : public Module {
 public:
  RetrievalMixer(int64_t dim, int64_t depth, int64_t samples, Generator& gen, TensorOptions opts = {});
  // x [B, c, d] (row 0 the query) -> candidate scores [B, c - 1].
  Tensor forward(const Tensor& x) const;
  int64_t samples() const { return samples_; }
  ModuleList<BidirectionalMixerBlock> blocks;
  Linear head;  // Linear(d, 1)

 private:
  int64_t samples_;
};

}  // namespace mg
