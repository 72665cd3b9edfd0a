#pragma once
// `mixgrad represent` as a function, so the reproduction report can run the same experiment
// and tabulate what it measured instead of re-reading its CSV.
#include <string>
#include <vector>

namespace mg {

struct RepresentRow {
  std::string model;     // "mixer@1800", "mixer_untrained", "masked_mixer_d64", ...
  int layer = 0;         // blocks run
  double hamming = 0;    // the paper's modified Hamming metric (0 = exact recovery)
  double top1 = 0;       // plain top-1 token accuracy
  double seconds = 0;
};

// Runs the experiment for the `mixgrad represent` arguments `argv` (see its --help), writing
// the same files to --out; returns one row per (model, layer) in the order run. Throws mg::Error
// for bad arguments, as the command does.
std::vector<RepresentRow> represent_experiment(const std::vector<std::string>& argv);

}  // namespace mg
