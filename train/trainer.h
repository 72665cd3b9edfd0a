#pragma once
// The one training loop of the project. Every run -- causal LM pre-training, autoencoders,
// InfoNCE fine-tuning, frozen-embedding retrieval -- is a Trainer given a model, a data source
// and a loss. The Trainer owns everything else: AdamW and its LR schedule, gradient clipping,
// bf16 autocast, the device, threads, validation hooks, metrics.csv and loss.png, the progress
// bar, atomic checkpoints with bit-exact resume, an exclusive lock on the run directory, and a
// clean stop on Ctrl-C, SIGTERM, a time limit or a step budget.
//
// One step, in this order (the order is part of the bit-exact contract):
//   lr = schedule(step); batch = data.next(); loss = loss_fn(batch) under autocast;
//   loss.backward(); clip; AdamW step; zero grads; record loss.item().
// With M = ranks x grad_accum_steps > 1 micro-batches per step, rank r computes micro-batches
// r*A .. r*A+A-1 of the step's M (skipping the others'), the gradients are summed over ranks
// and divided by M, and the step's loss is the mean of the M micro-batch losses. Rank 0 alone
// writes files and draws the progress bar (docs/distributed.md).
//
// Files in control.out_dir (none when it is empty): metrics.csv (step, lr, train_loss,
// grad_norm, val_loss, tokens, seconds; tokens and seconds count from the run's first step,
// across resumes), loss.png, checkpoint.safetensors (nn/checkpoint.h: parameters, AdamW state,
// the step, the data position, hooks.metadata), and .lock while the run holds the directory.
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/tensor.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "train/data_source.h"
#include "train/run_lock.h"
#include "train/train_settings.h"

namespace mg {

// One step's loss: a scalar (mean over what the step scores), and how many tokens (or samples)
// the step consumed, for throughput and the metrics' `tokens` column.
struct StepLoss {
  Tensor loss;
  double tokens = 0;
};

struct TrainHooks {
  // Mean validation loss, called every eval_every steps and at the last step, under no-grad and
  // the run's autocast. Unset: no validation.
  std::function<double()> validate;
  // Called after the resume (if any) has been validated and the run directory locked, before
  // the first step: the place to write side files (config, tokenizer) into the run directory,
  // so that a refused run leaves the directory untouched.
  std::function<void()> on_start;
  // Called every log_every steps and at the last with the window's mean train loss.
  std::function<void(int64_t step, double mean_loss)> on_log;
  std::map<std::string, std::string> metadata;  // stored in every checkpoint
  std::string plot_title;                       // of loss.png
  std::string baseline_label;                   // a horizontal reference line in loss.png
  double baseline = NAN;
};

struct RunControl {
  std::string out_dir;       // empty: nothing is written (no metrics, checkpoints or lock)
  bool resume = false;       // continue from out_dir/checkpoint.safetensors
  int64_t stop_after = -1;   // stop with a checkpoint after this many steps of this invocation; -1 never
  std::string label;         // the progress bar's label
  bool progress = true;      // draw the progress bar on stderr
};

struct EvalPoint {
  int64_t step;
  double loss;
};

struct TrainResult {
  int64_t first_step = 0;           // where this invocation started (> 0 when resumed)
  int64_t steps_done = 0;           // the step reached
  bool interrupted = false;         // stopped before settings.steps
  std::string stop_reason;          // "interrupted", "time limit", "stop_after" or ""
  std::vector<double> losses;       // each step's loss, this invocation
  double last_train_loss = NAN;     // mean over the last log window
  std::vector<EvalPoint> validation;  // this invocation's validation points
  double tokens = 0;                // this invocation
  double seconds = 0;               // this invocation
  double tokens_per_second = 0;
};

class Trainer {
 public:
  // Validates `settings` (throws naming the key), applies threads and determinism, and moves
  // `model` to settings.device. The model's parameters are what AdamW trains.
  Trainer(Module& model, const TrainSettings& settings, RunControl control);

  Device device() const { return device_; }
  bool autocast() const { return bf16_; }
  const TrainSettings& settings() const { return s_; }
  const std::string& checkpoint_path() const { return ckpt_; }

  // Trains to settings.steps (or until stopped). `loss` maps a batch to the step's loss on
  // device(); it runs under the run's autocast.
  template <class Batch>
  TrainResult fit(DataSource<Batch>& data, const std::function<StepLoss(const Batch&)>& loss,
                  const TrainHooks& hooks = {}) {
    std::optional<Batch> current;
    return run(data, [&] { current.emplace(data.next()); }, [&] { data.skip(); }, [&] { return loss(*current); },
               hooks);
  }

 private:
  TrainResult run(Resumable& data, const std::function<void()>& next, const std::function<void()>& skip,
                  const std::function<StepLoss()>& step_loss, const TrainHooks& hooks);

  Module& model_;
  TrainSettings s_;
  RunControl control_;
  Device device_;
  bool bf16_;
  std::string ckpt_;
  std::optional<RunLock> lock_;
};

}  // namespace mg
