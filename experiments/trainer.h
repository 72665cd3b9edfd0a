#pragma once
// `mixgrad train`: trains one language model from a RunConfig with progress, a CSV of losses,
// periodic validation, PNG loss curves, atomic checkpoints, exact resume and clean Ctrl-C.
//
// Files in out_dir: config.yaml (the run's config), tokenizer.bpe (a copy, so the run is
// self-contained), metrics.csv (step, lr, train_loss, grad_norm, val_loss, tokens, seconds),
// loss.png, checkpoint.safetensors (latest; see nn/checkpoint.h), samples.txt.
#include <string>
#include <vector>

#include "experiments/run_config.h"

namespace mg {

struct TrainOptions {
  bool resume = false;        // continue from out_dir/checkpoint.safetensors
  int64_t stop_after = -1;    // stop (with a checkpoint) after this many steps of this invocation; -1 = never
};

struct EvalPoint {
  int64_t step;
  double loss;
};

struct TrainSummary {
  int64_t steps_done = 0;
  bool interrupted = false;   // Ctrl-C, time limit or stop_after
  double last_train_loss = 0; // mean over the last log window
  std::vector<EvalPoint> validation;
  double unigram_entropy = 0; // of the train shard, nats: the context-free baseline
  double tokens_per_second = 0;
  double seconds = 0;
  int64_t num_parameters = 0;
  std::string sample;         // greedy continuation of a validation prompt
};

TrainSummary train_run(const RunConfig& rc, const TrainOptions& opts);

// Shifted causal-LM cross-entropy (PAPER A.8): logits [B,T,V] against labels [B,T] (kIgnoreIndex
// at padding), predicting labels[:, 1:] from logits[:, :-1]. Reduction sum or mean.
Tensor shifted_lm_loss(const Tensor& logits, const Tensor& labels, bool sum = false);
// Number of positions shifted_lm_loss scores.
int64_t count_scored(const Tensor& labels);

}  // namespace mg
