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
  bool standard = false;                      // the standard tier (std_*.yaml, experiments/reproduce_tiers.cpp)
  bool paper = false;                         // the paper's scales (paper_*.yaml, experiments/paper_scale.h)
  bool dry_run = false;                       // with paper: build, count and step every model on the CPU
  std::string only;                           // paper / standard: only configs whose name contains it
  int64_t build_limit = 0;                    // paper dry run: see PaperDryRunOptions::build_limit
  std::string out;                            // default runs/quick, runs/standard or runs/paper
  std::string config_dir;                     // empty: experiments/configs of the source tree
  int64_t steps = 0;                          // > 0 overrides every config's train.steps
  bool resume = false;                        // continue runs that hold a checkpoint
  bool skip_represent = false, skip_retrieval = false;
  RetrievalComparisonOptions retrieval;       // InfoNCE steps: 500 quick, 5000 otherwise (CLI)
};

// Returns the exit code: 0, or 130 when a training run stopped early (resume with resume).
// Exactly one tier (quick, standard, paper) must be chosen.
int run_reproduce_experiment(const ReproduceOptions& options);
// The standard and paper tiers (experiments/reproduce_tiers.cpp), same exit codes; the paper
// tier refuses without a CUDA GPU unless dry_run, and its dry run returns 1 when a row failed.
int run_standard_tier(const ReproduceOptions& options);
int run_paper_tier(const ReproduceOptions& options);
ReproduceOptions parse_reproduce_args(const std::vector<std::string>& argv);

}  // namespace mg
