#pragma once
// `mixgrad train`: trains one language model from a RunConfig with progress, a CSV of losses,
// periodic validation, PNG loss curves, atomic checkpoints, exact resume and clean Ctrl-C.
//
// Files in out_dir: config.yaml (the run's config), tokenizer.bpe (a copy, so the run is
// self-contained), metrics.csv (step, lr, train_loss, grad_norm, val_loss, tokens, seconds),
// loss.png, checkpoint.safetensors (latest; see nn/checkpoint.h), samples.txt.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/factories.h"
#include "data/batcher.h"
#include "data/bpe_tokenizer.h"
#include "experiments/run_config.h"
#include "nn/module.h"

namespace mg {

struct PreparedData;  // experiments/data_prep.h

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

// Trains the causal language model rc.model describes (rc.autoencoder must be false).
TrainSummary train_run(const RunConfig& rc, const TrainOptions& opts);

// What train_objective trains: a model and its loss. train_run's is the causal LM with the
// shifted loss; experiments/autoencode.cpp's the autoencoder with the reconstruction loss.
struct TrainObjective {
  std::shared_ptr<Module> model;  // its parameters are trained and checkpointed
  std::string summary;            // the model in one line, for logs, the plot and checkpoints
  // Loss of a batch whose inputs and labels (kIgnoreIndex at padding) are on the training
  // device: the mean over the scored positions, or with `sum` their sum.
  std::function<Tensor(const Tensor& inputs, const Tensor& labels, bool sum)> loss;
  // How many positions `loss` scores in a batch's labels (the divisor of a summed loss).
  std::function<int64_t(const Tensor& labels)> count_scored;
  // Optional: a short text showing the trained model at work (written to samples.txt).
  std::function<std::string(const PreparedData& data)> sample;
};

// train_run for any objective: the same data preparation, batches, AdamW and LR schedule,
// progress, metrics.csv, loss.png, atomic checkpoints, resume and Ctrl-C. build(gen, device) is
// called once, after the data are prepared, with a generator seeded by rc.train.seed; it must
// place the model's f32 parameters on `device`.
TrainSummary train_objective(const RunConfig& rc, const TrainOptions& opts,
                             const std::function<TrainObjective(Generator& gen, Device device)>& build);

// The batcher options of a run (rc.data, rc.model.n_ctx, rc.train.batch_size and seed; pad and
// eos ids from tok).
BatcherOptions run_batcher_options(const RunConfig& rc, const BpeTokenizer& tok);

// Mean of obj.loss over the positions obj.count_scored counts, over the first max_batches
// batches (0: all) of `batches` from its start, without gradients; inputs moved to `device`.
// NaN when nothing is scored.
double mean_validation_loss(const TrainObjective& obj, ValidationBatches& batches, Device device,
                            int64_t max_batches);

// Shifted causal-LM cross-entropy (PAPER A.8): logits [B,T,V] against labels [B,T] (kIgnoreIndex
// at padding), predicting labels[:, 1:] from logits[:, :-1]. Reduction sum or mean.
Tensor shifted_lm_loss(const Tensor& logits, const Tensor& labels, bool sum = false);
// Number of positions shifted_lm_loss scores.
int64_t count_scored(const Tensor& labels);

}  // namespace mg
