#pragma once
// The retrieval comparison of the reproduction report (docs/paper.md E): for each pretrained language
// model, top-1 / MRR on the same test pools for (a) its embeddings as they are, (b) the
// frozen-embedding method of the paper's first version (E.2) and (c) the model fine-tuned with
// InfoNCE (E.3), beside the TF-IDF and BM25 baselines, each given the text the models see (cut
// to the first model's n_ctx tokens) and the full text.
#include <cstdint>
#include <string>
#include <vector>

#include "experiments/retrieval.h"

namespace mg {

struct RetrievalComparisonOptions {
  std::string pairs = "reuters";               // load_pairs spec
  double test_fraction = 0.125;                // split_pairs(.., test_fraction, 0), as `retrieve`
  std::vector<int64_t> pools = {32, 128, 1024};
  uint64_t pool_seed = 0;                      // the pools of `mixgrad retrieve eval --seed 0`
  // The paper's pooling (docs/paper.md E.2, E.3, I.5): the second-last real token; mean pooling
  // and the last token are options.
  EmbedPosition position = EmbedPosition::second_last;
  // InfoNCE fine-tuning: groups of 32, one group per step (log_every is set to steps / 10).
  InfoNceOptions infonce{.embed = {},
                         .temperature = 0.02,
                         .group_size = 32,
                         .train = {.steps = 500, .lr = 1e-3, .warmup_steps = 50, .eval_every = 0,
                                   .checkpoint_every = 0, .seed = 0}};
  // The frozen-embedding method, at frozen.pool_size only (its mixer's width is the pool size).
  // It sits at chance (CE ln 31) for its first ~1500 steps here before breaking symmetry, as
  // the paper's took epochs (docs/paper.md E.2), hence the step count.
  FrozenRetrievalOptions frozen{.pool_size = 32,
                                .depth = 4,
                                .train = {.batch_size = 32, .steps = 3000, .lr = 3e-4, .warmup_steps = 100,
                                          .eval_every = 0, .log_every = 50, .checkpoint_every = 0, .seed = 0}};
};

struct RetrievalComparisonRow {
  std::string model;   // run name ("" for TF-IDF)
  // "tfidf", "bm25" (texts cut to the first model's n_ctx tokens, as the models see them),
  // "tfidf (full text)", "bm25 (full text)", "embeddings", "frozen", "infonce"
  std::string method;
  std::vector<RetrievalScore> scores;  // one per evaluated pool size (frozen: frozen.pool_size only)
  double train_loss_start = 0, train_loss_end = 0;  // frozen / InfoNCE training loss
  double seconds = 0;
};

struct PretrainedModel {
  std::string name;        // shown in the table
  std::string checkpoint;  // a `mixgrad train` checkpoint; tokenizer.bpe beside it
};

// Runs every method for every model on the same split and pools; the models are loaded from
// their checkpoints (not changed on disk). Writes retrieval.csv and retrieval_top1.png (one bar
// group per pool size) to out_dir. Throws mg::Error for a missing checkpoint or pair set.
std::vector<RetrievalComparisonRow> run_retrieval_comparison(const std::vector<PretrainedModel>& models,
                                                             const RetrievalComparisonOptions& options,
                                                             const std::string& out_dir);

}  // namespace mg
