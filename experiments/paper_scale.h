#pragma once
// `mixgrad reproduce --paper`: the paper's own model scales (experiments/configs/paper_*.yaml,
// plus the frozen-embedding retrieval mixers, which have no run config). On a GPU it trains the
// language-model and autoencoder configs in turn; `--dry-run` instead builds every model on the
// CPU, compares its parameter count with the paper's (docs/paper.md A.11, B.4) and runs one
// training step on tiny synthetic data.
#include <cstdint>
#include <string>
#include <vector>

namespace mg {

// One model of the paper at the paper's scale.
struct PaperModel {
  std::string label;       // what the paper calls it
  std::string config;      // experiments/configs/<config>.yaml; empty for a retrieval mixer
  int64_t paper_params;    // the docs/paper.md figure; 0 when the paper gives dimensions only
  std::string source;      // docs/paper.md section(s)
  // Retrieval mixer only (nn/retrieval_mixer.h): width, blocks, samples per pool.
  int64_t retrieval_dim = 0, retrieval_depth = 0, retrieval_samples = 0;
};

// Every model row for which the paper gives a parameter count or the dimensions, in the order
// `reproduce --paper` runs them.
const std::vector<PaperModel>& paper_models();

struct PaperDryRunOptions {
  std::string config_dir;       // empty: experiments/configs of the source tree
  std::string only;             // non-empty: only rows whose config or label contains it
  int64_t step_tokens = 8;      // T of the one synthetic step (batch 1), at most the model's n_ctx
  // Models with more parameters than this are counted from their config (no allocation) and
  // take their step at 1 block (every other size as in the paper); 0 builds every model whole.
  int64_t build_limit = 0;
};

struct PaperDryRunRow {
  PaperModel model;
  int64_t counted = 0;          // from the config's shapes (expected_num_parameters)
  int64_t built = 0;            // the built model's num_parameters (at step_layers blocks)
  int64_t step_layers = 0;      // blocks of the model that took the step
  int64_t step_tokens = 0;
  double loss_before = 0, loss_after = 0, seconds = 0;
  std::string failure;          // empty when every check passed
};

// Runs the dry run, prints its table to stdout and returns the rows; a row's failure says
// what went wrong (a count that differs from the paper's, a non-finite loss, a step that did not
// lower the loss on its own batch).
std::vector<PaperDryRunRow> run_paper_dry_run(const PaperDryRunOptions& options);

}  // namespace mg
