#pragma once
// Learning-rate schedules as a function of the 0-based optimizer step s (the lr used by the
// (s+1)-th optimizer.step(); set it with optimizer.set_lr(schedule.at(s)) before stepping).
//
// Warmup (all kinds): for s < warmup_steps, lr = peak_lr * s / warmup_steps, so step 0 trains
// with lr 0 and step warmup_steps is the first at peak_lr, exactly as HF transformers'
// get_*_schedule_with_warmup (LambdaLR multiplier s / max(1, warmup)).
// After warmup, with progress p = (s - warmup) / max(1, total - warmup):
//   constant: peak_lr                                 (get_constant_schedule_with_warmup)
//   linear:   min_lr + (peak_lr - min_lr) * (1 - p)   (get_linear_schedule_with_warmup when min_lr = 0)
//   cosine:   min_lr + (peak_lr - min_lr) * 0.5 (1 + cos(pi p))
//             (get_cosine_schedule_with_warmup, num_cycles 0.5; with min_lr it is HF's
//             get_cosine_with_min_lr_schedule_with_warmup with min_lr_rate = min_lr / peak_lr)
// For s >= total_steps the decaying kinds stay at min_lr (HF's linear clamps at 0 the same way;
// HF's cosine would start rising again, which no run here wants).
#include <cstdint>

namespace mg {

enum class DecayKind { constant, linear, cosine };

struct LRSchedule {
  double peak_lr = 0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;  // decaying kinds need total_steps >= warmup_steps
  DecayKind decay = DecayKind::linear;
  double min_lr = 0;

  // The learning rate for 0-based step `step` (>= 0). Throws on a negative step, negative
  // warmup, or a decaying schedule whose total_steps is below warmup_steps.
  double at(int64_t step) const;
};

}  // namespace mg
