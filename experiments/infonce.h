#pragma once
// InfoNCE fine-tuning of a language model as an embedder (docs/paper.md E.3), on the shared
// Trainer: this file supplies the data source (query order and candidate groups, resampled every
// epoch) and the loss; the Trainer supplies AdamW, the schedule, clipping, bf16, the device,
// metrics, checkpoints and resume.
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "experiments/embedding.h"
#include "nn/lm.h"
#include "train/trainer.h"

namespace mg {

struct InfoNceOptions {
  EmbedOptions embed;
  double temperature = 0.02;
  // Sequences per group: the query and its group_size - 1 candidates (its document and
  // group_size - 2 negatives drawn from the other training documents), as the paper's 32.
  int64_t group_size = 32;
  int64_t groups_per_step = 1;  // the paper's 4 GPUs x 1 group
  // > 0: in-batch negatives instead of groups: this many (query, document) pairs per step, each
  // query scored against every document of the step.
  int64_t in_batch = 0;
  // The loop. steps 0: one epoch (every training query once); warmup is capped at the steps;
  // batch_size is unused (groups_per_step / in_batch say what a step holds).
  TrainSettings train{.steps = 0, .lr = 1e-4, .warmup_steps = 500, .eval_every = 0, .log_every = 10,
                      .checkpoint_every = 0, .seed = 0};
};

struct InfoNceStats {
  int64_t steps = 0;                     // the step reached
  bool interrupted = false;
  double first_loss = 0, last_loss = 0;  // mean over the first / last min(log_every, steps) steps run
  std::vector<double> losses;            // every step's loss (this invocation)
  double seconds = 0;
};

// Trains `model` in place as an embedder of queries[i] <-> documents[i] (token sequences).
// `on_log(step, loss)` is called every log_every steps when set. `control` names the run
// directory (checkpoints, metrics.csv, loss.png, resume); by default nothing is written.
InfoNceStats train_info_nce(LanguageModel& model, const std::vector<std::vector<int32_t>>& queries,
                            const std::vector<std::vector<int32_t>>& documents, int32_t pad_id,
                            const InfoNceOptions& options,
                            const std::function<void(int64_t, double)>& on_log = nullptr,
                            const RunControl& control = {.out_dir = {}, .label = {}, .progress = false},
                            const std::map<std::string, std::string>& metadata = {});

// One group's (or in-batch step's) loss for the given query/document indices: the grouped
// InfoNCE loss with documents[candidates[g][0]] the positive of query queries_idx[g].
Tensor info_nce_group_loss(LanguageModel& model, const std::vector<std::vector<int32_t>>& queries,
                           const std::vector<std::vector<int32_t>>& documents, int32_t pad_id,
                           std::span<const int64_t> query_idx, const std::vector<std::vector<int64_t>>& candidates,
                           const InfoNceOptions& options);

}  // namespace mg
