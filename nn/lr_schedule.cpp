#include "nn/lr_schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"

namespace mg {

double LRSchedule::at(int64_t step) const {
  MG_CHECK(step >= 0, "LRSchedule: negative step ", step);
  MG_CHECK(warmup_steps >= 0, "LRSchedule: negative warmup_steps ", warmup_steps);
  if (step < warmup_steps) return peak_lr * (double(step) / double(std::max<int64_t>(1, warmup_steps)));
  if (decay == DecayKind::constant) return peak_lr;
  MG_CHECK(total_steps >= warmup_steps, "LRSchedule: total_steps ", total_steps, " is below warmup_steps ",
           warmup_steps);
  const double span = double(std::max<int64_t>(1, total_steps - warmup_steps));
  const int64_t s = std::min(step, total_steps);
  // Written as HF writes them, so that min_lr = 0 reproduces its values to the last bit.
  const double factor = decay == DecayKind::linear
                            ? double(total_steps - s) / span
                            : 0.5 * (1.0 + std::cos(std::numbers::pi * (double(s - warmup_steps) / span)));
  return min_lr + (peak_lr - min_lr) * factor;
}

}  // namespace mg
