#pragma once
// `mixgrad retrieve eval|train|embed|frozen|texts` as a typed experiment (docs/paper.md E): every
// default stated once, in these structs; the CLI fills them from their own defaults.
#include <cstdint>
#include <string>
#include <vector>

#include "experiments/frozen_retrieval.h"
#include "experiments/infonce.h"
#include "experiments/retrieval_data.h"

namespace mg {

struct RetrieveModelOptions {
  std::string checkpoint;   // a trained run's checkpoint (tokenizer.bpe beside it), or
  std::string config;       // a run config, for an untrained model ...
  uint64_t init_seed = 0;   // ... initialised with this seed
  std::string tokenizer;    // default: beside the checkpoint / the config's data cache
  std::string device = "cpu";
};

struct RetrieveOptions {
  std::string command;                       // eval | train | embed | frozen | texts
  RetrieveModelOptions model;
  PairSplitOptions split;
  EmbedOptions embed;
  std::vector<int64_t> pools = {32, 128, 1024};  // pool sizes c scored by eval and train
  uint64_t pool_seed = 0;
  std::string out;                           // a directory (eval, train, frozen) or a file (embed, texts)
  int threads = 0;                           // 0: OpenMP's default
  bool tfidf_only = false, no_tfidf = false, no_bm25 = false;  // eval
  std::string which = "test";                // embed, texts: test | train | all (texts: no default)
  std::string side = "documents";            // texts: documents | queries | both
  InfoNceOptions infonce;                    // train
  bool no_eval = false;                      // train: skip the evaluation after training
  bool resume = false;                       // train, frozen: continue from out's checkpoints
  int64_t stop_after = -1;                   // train: stop (resumably) after this many steps
  FrozenRetrievalOptions frozen;             // frozen
  std::vector<int64_t> frozen_pools = {32, 128};
};

// Runs options.command; returns the exit code (130 when training was stopped early).
int run_retrieve_experiment(const RetrieveOptions& options);

// `mixgrad retrieve SUB ...` as options; `help` set for --help.
RetrieveOptions parse_retrieve_args(const std::vector<std::string>& args, bool& help);

}  // namespace mg
