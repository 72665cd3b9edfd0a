#pragma once
// The language-model data of a run as a Trainer data source: data/batcher.h's shuffled
// batches, with their position stored in checkpoints; and the mean loss over validation batches.
#include <cstdint>
#include <functional>
#include <string>

#include "core/device.h"
#include "data/batcher.h"
#include "train/data_source.h"

namespace mg {

class BatcherSource : public DataSource<Batch> {
 public:
  explicit BatcherSource(Batcher& batcher) : batcher_(batcher) {}
  Batch next() override { return batcher_.next(); }
  void skip() override;  // advances the position without reading a token
  SourceState state() const override;
  void restore(const SourceState& s, const std::string& where) override;

 private:
  Batcher& batcher_;
};

// A batch's summed loss (inputs and labels on the training device) and the number of
// positions it scores.
using SummedLoss = std::function<double(const Tensor& inputs, const Tensor& labels)>;
using ScoredCount = std::function<int64_t(const Tensor& labels)>;

// Mean of loss over the positions `count` counts, over the first max_batches batches (0: all)
// from the start of `batches`, without gradients; inputs moved to `device`. NaN when nothing
// is scored.
double mean_validation_loss(ValidationBatches& batches, Device device, int64_t max_batches, const SummedLoss& loss,
                            const ScoredCount& count);

}  // namespace mg
