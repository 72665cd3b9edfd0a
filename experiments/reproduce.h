#pragma once
// `mixgrad reproduce` as a typed experiment: train the mixer and the transformer on the same
// data and budget, then run the representation and retrieval experiments on both (each called
// with its options struct) and write report.md.
#include <cstdint>
#include <string>
#include <vector>

#include "experiments/retrieval_comparison.h"

namespace mg {

struct ReproduceOptions {
  bool quick = false;                         // the quick configs (quick_*.yaml)
  std::string out;                            // default runs/quick or runs/full
  std::string config_dir;                     // empty: experiments/configs of the source tree
  int64_t steps = 0;                          // > 0 overrides every config's train.steps
  bool resume = false;                        // continue runs that hold a checkpoint
  bool skip_represent = false, skip_retrieval = false;
  RetrievalComparisonOptions retrieval;       // InfoNCE steps: 500 quick, 5000 otherwise (CLI)
};

// Returns the exit code: 0, or 130 when a training run stopped early (resume with resume).
int run_reproduce_experiment(const ReproduceOptions& options);
ReproduceOptions parse_reproduce_args(const std::vector<std::string>& argv);

}  // namespace mg
