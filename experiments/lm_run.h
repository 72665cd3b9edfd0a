#pragma once
// `mixgrad train` and `mixgrad autoencode train`: a run config (experiments/run_config.h) turned
// into a model, a data source and a loss for the shared Trainer (train/trainer.h).
//
// Files in out_dir: the Trainer's (metrics.csv, loss.png, checkpoint.safetensors, .lock), plus
// config.yaml (the run's config) and tokenizer.bpe (a copy, so the run is self-contained) --
// both written only after a resume has been validated -- and samples.txt.
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/factories.h"
#include "data/batcher.h"
#include "data/bpe_tokenizer.h"
#include "experiments/run_config.h"
#include "nn/lm_loss.h"
#include "nn/module.h"
#include "train/trainer.h"

namespace mg {

struct PreparedData;  // experiments/data_prep.h

struct TrainOptions {
  bool resume = false;        // continue from out_dir/checkpoint.safetensors
  int64_t stop_after = -1;    // stop (with a checkpoint) after this many steps of this invocation; -1 = never
};

struct TrainSummary {
  int64_t steps_done = 0;
  bool interrupted = false;   // Ctrl-C, SIGTERM, time limit or stop_after
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

// What a run config trains: a model and its loss. train_run's is the causal LM with the
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

// A run config's training for any objective: its data prepared and batched, then the Trainer.
// build(gen, device) is called once, after the data are prepared, with a generator seeded by
// rc.train.seed; it must place the model's f32 parameters on `device`.
TrainSummary train_objective(const RunConfig& rc, const TrainOptions& opts,
                             const std::function<TrainObjective(Generator& gen, Device device)>& build);

// The batcher options of a run (rc.data, rc.model.n_ctx, rc.train.batch_size and seed; pad and
// eos ids from tok).
BatcherOptions run_batcher_options(const RunConfig& rc, const BpeTokenizer& tok);

}  // namespace mg
