#pragma once
// Anomaly mode, after PyTorch's torch.autograd.detect_anomaly: while an AnomalyModeGuard lives,
// every op output (forward) and every gradient a backward node produces is scanned, and the
// first NaN or Inf throws mg::Error naming the op, the module path, forward or backward, the
// tensor's shape and dtype, the first bad element, and the context (the Trainer's step):
//
//   anomaly: forward output of op 'mul' in module 'mixerblocks.0.conv' holds NaN at [0, 3, 1]
//   (f32[2, 8, 16] on cpu), step 5
//
// It catches the op that MADE the first non-finite value, not the loss that shows it later.
// Each scan copies the tensor to the host, so a step runs several times slower; a debugging
// tool (`train.detect_anomaly: true`, `mixgrad audit --detect-anomaly`). Thread-local, like
// the observers it is built on (autograd/instrument.h).
#include <string>

#include "autograd/instrument.h"

namespace mg {

class AnomalyModeGuard {
 public:
  AnomalyModeGuard();
  // Text added to every message ("step 5"); empty adds nothing.
  void set_context(std::string context) { *context_ = std::move(context); }

 private:
  std::shared_ptr<std::string> context_;
  OpObserverGuard guard_;
};

// The index of the first NaN or Inf of `t` in row-major order (any device, layout, floating
// dtype), or -1 when all are finite or t is undefined or integer. *is_nan tells which.
int64_t first_nonfinite(const Tensor& t, bool* is_nan);

}  // namespace mg
