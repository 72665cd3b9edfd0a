#pragma once
// The settings of one training loop, shared by every run type (language model, autoencoder,
// InfoNCE fine-tuning, frozen-embedding retrieval). The defaults here are the language model's
// (the YAML `train:` section); a run type with other defaults states them once, in its own
// options struct, by initialising its TrainSettings member.
#include <cstdint>
#include <string>

#include "nn/lr_schedule.h"

namespace mg {

struct TrainSettings {
  int64_t batch_size = 8;     // read by the run's data source, not by the Trainer
  // Micro-batches accumulated per optimizer step on each rank; a step then averages
  // grad_accum_steps x (ranks) micro-batch gradients (docs/distributed.md).
  int64_t grad_accum_steps = 1;
  int64_t steps = 1000;       // optimizer steps in all (a resumed run continues to this total)
  double lr = 5e-4;           // peak learning rate of the schedule
  int64_t warmup_steps = 50;
  DecayKind decay = DecayKind::linear;
  double min_lr = 0;
  double weight_decay = 0;    // HF Trainer default, as the paper (docs/paper.md C.1)
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double grad_clip = 1.0;     // global L2 norm; 0 disables
  int64_t eval_every = 100;   // validation every this many steps and at the last; 0: last only
  int64_t eval_batches = 20;  // read by the run's validation hook; 0 = the whole split
  int64_t log_every = 10;     // window of the reported mean train loss
  int64_t checkpoint_every = 200;  // 0: only at the end (and on a stop)
  std::uint64_t seed = 42;
  int threads = 0;            // 0 = OpenMP's default
  std::string device = "cpu";
  std::string precision = "f32";  // f32 | bf16 (core/autocast.h)
  bool deterministic = false;     // core/determinism.h; CPU runs always are
  // autograd/anomaly.h: the first NaN/Inf in any op output or gradient stops the run, naming
  // the op, module and step. Several times slower; for debugging.
  bool detect_anomaly = false;
  // Data-parallel runs in the default mode (docs/distributed.md): gradients are summed in
  // buckets of at most this many MiB, each started during backward unless reduce_overlap is off.
  double reduce_bucket_mb = 25;
  bool reduce_overlap = true;
  double time_limit_minutes = 0;  // 0 = none; stops (with a checkpoint) when exceeded
};

// Throws mg::Error naming `where` (a file or command) and the key for a value no run can use:
// steps < 1, lr <= 0 or not finite, min_lr outside [0, lr], warmup < 0, a negative interval,
// betas outside [0, 1), eps <= 0, grad_clip < 0, batch_size < 1, threads < 0, an unknown
// precision, a negative time limit, reduce_bucket_mb outside [1/1024, 1024].
void validate_train_settings(const TrainSettings& s, const std::string& where);

}  // namespace mg
