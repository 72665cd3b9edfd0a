#include "train/batch_source.h"

#include <cmath>

#include "autograd/grad_mode.h"

namespace mg {

SourceState BatcherSource::state() const {
  BatchPosition p = batcher_.position();
  return {{"data.epoch", std::to_string(p.epoch)},
          {"data.cursor", std::to_string(p.cursor)},
          {"data.seed", std::to_string(p.seed)}};
}

void BatcherSource::skip() {
  BatchPosition p = batcher_.position();
  p.cursor += uint64_t(batcher_.options().batch_size);
  batcher_.set_position(p);  // normalises into the next epoch when this one is used up
}

void BatcherSource::restore(const SourceState& s, const std::string& where) {
  batcher_.set_position({state_uint(s, "data.epoch", where), state_uint(s, "data.cursor", where),
                         state_uint(s, "data.seed", where)});
}

double mean_validation_loss(ValidationBatches& batches, Device dev, int64_t max_batches, const SummedLoss& loss,
                            const ScoredCount& count) {
  NoGradGuard no_grad;
  batches.reset();
  Batch b;
  double total = 0;
  int64_t scored = 0, nb = 0;
  while ((max_batches == 0 || nb < max_batches) && batches.next(b)) {
    total += loss(b.inputs.to(dev), b.labels.to(dev));
    scored += count(b.labels);
    ++nb;
  }
  return scored ? total / double(scored) : NAN;
}

}  // namespace mg
