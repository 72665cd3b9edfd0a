#pragma once
// The frozen-embedding retrieval method of the paper's first version (docs/paper.md E.2): a
// bidirectional mixer (nn/retrieval_mixer.h) over [query, c - 1 candidates] of fixed
// embeddings learns to pick the query's document, trained on the shared Trainer.
#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "experiments/retrieval_pools.h"
#include "nn/retrieval_mixer.h"
#include "train/trainer.h"

namespace mg {

struct FrozenRetrievalOptions {
  int64_t pool_size = 32;  // c: the query and c - 1 candidates
  int64_t depth = 8;
  int64_t epochs = 1;      // used when train.steps is 0
  // The loop; batch_size pools per step; steps 0: `epochs` passes over the training queries;
  // warmup is capped at the steps.
  TrainSettings train{.batch_size = 32, .steps = 0, .lr = 1e-4, .warmup_steps = 500, .eval_every = 0,
                      .log_every = 50, .checkpoint_every = 0, .seed = 0};
};

struct FrozenRetrievalResult {
  std::vector<double> losses;  // per step (this invocation)
  double train_loss = 0;       // mean of the last log window
  double test_loss = 0;        // CE on the test pools (the paper's metric; chance ln(c - 1))
  RetrievalScore test;         // top-1 and MRR on the test pools
  bool interrupted = false;
};

// Trains a RetrievalMixer on train embeddings (queries [N, d], documents [N, d]; pools resampled
// every epoch as E.2) and scores it on the test embeddings' pools make_pools(n_test, c,
// eval_seed), the same pools every other method is scored on. `control` names a run directory
// (checkpoints, metrics, resume); by default nothing is written.
FrozenRetrievalResult train_frozen_retrieval(RetrievalMixer& model, const Tensor& train_queries,
                                             const Tensor& train_documents, const Tensor& test_queries,
                                             const Tensor& test_documents, const FrozenRetrievalOptions& options,
                                             uint64_t eval_seed,
                                             const std::function<void(int64_t, double)>& on_log = nullptr,
                                             const RunControl& control = {.out_dir = {}, .label = {}, .progress = false});

// Mean CE and top-1/MRR of `model` on pools over embeddings (query i's document is row i).
std::pair<double, RetrievalScore> evaluate_frozen_retrieval(RetrievalMixer& model, const Tensor& queries,
                                                            const Tensor& documents,
                                                            const std::vector<RetrievalPool>& pools,
                                                            int64_t batch_size = 64);

}  // namespace mg
