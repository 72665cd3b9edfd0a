#pragma once
// `mixgrad represent` as a typed experiment: the options struct (every default stated here,
// once), run_represent_experiment(options) for the reproduction report and tests, and the CLI's
// parser that fills the struct from its own defaults.
#include <cstdint>
#include <string>
#include <vector>

#include "experiments/representation.h"

namespace mg {

struct RepresentExperimentOptions {
  // Models, any mix; with none of the three, kinds = {masked_mixer, llama}.
  std::vector<std::string> checkpoints;  // trained checkpoints (config and tokenizer.bpe from their run dir)
  std::vector<std::string> configs;      // untrained models described by run configs
  std::vector<std::string> kinds;        // untrained models of these kinds, shaped by the fields below
  int64_t d_model = 64, n_layers = 8, n_ctx = 32, heads = 4;
  std::string mixer_form = "flat";
  uint64_t model_seed = 0;               // initialisation of untrained models
  double model_init_std = 0;             // > 0: ModelConfig::init_std of --kinds models (llama, gpt)
  // Texts: the first `texts` validation documents, unless given as `text` or random tokens.
  std::vector<std::string> text;
  int64_t texts = 4;
  bool random_tokens = false;
  int64_t vocab = 4096;                  // with random_tokens
  std::string tokenizer;                 // for untrained models (default: the quick configs' data)
  int64_t length = 0;                    // tokens per text; 0 = the model's n_ctx
  std::string layers = "all";            // "all" or "1,2,8"
  // "" = 0.02 for every kind: the paper's mixer value (docs/paper.md D.5); its transformer script
  // uses 2, but on untrained Llama d=64, L=8 here 0.2 already recovers less than 0.02 does.
  // "0.05" for every kind, or "masked_mixer=0.02,llama=2".
  std::string lr;
  bool tune_lr = false;
  // Step sizes to sweep (--lr-sweep 0.002,0.02,0.2,2): every model runs every listed step size at
  // every layer; lr_sweep.csv/png hold all of them, and the usual outputs and returned rows are
  // those of each model's best step size (lowest mean modified Hamming metric over the layers,
  // ties broken by higher mean top-1 accuracy, then by the smaller step). Empty: no sweep.
  std::vector<double> lr_sweep;
  RepresentationOptions base;            // steps, final_lr_ratio, loss, decode, top_k, seed, init_std
  std::string out = "runs/represent";
};

struct RepresentRow {
  std::string model;     // "mixer@1800", "mixer_untrained", "masked_mixer_d64", ...
  int layer = 0;         // blocks run
  double lr = 0;         // the step size used
  int64_t scored = 0;    // positions scored (non-pad)
  double hamming = 0;    // the paper's modified Hamming metric (0 = exact recovery)
  double top1 = 0;       // plain top-1 token accuracy
  double seconds = 0;
};

// Runs the experiment, writing representation.csv/png, top1.png, positions.csv,
// recovery_*.png, loss_*.png and samples.txt to options.out; returns one row per (model, layer)
// in the order run. Throws mg::Error for bad options.
std::vector<RepresentRow> run_represent_experiment(const RepresentExperimentOptions& options);

// "0.002,0.02,0.2,2" as distinct positive finite step sizes, ascending; throws mg::Error naming
// the bad entry.
std::vector<double> parse_lr_list(const std::string& spec);

// The `mixgrad represent` arguments as options (throws naming a bad argument); `help` is set
// when --help was given.
RepresentExperimentOptions parse_represent_args(const std::vector<std::string>& argv, bool& help);

// The command line that runs `options` (for reports).
std::string represent_command_line(const RepresentExperimentOptions& options);

}  // namespace mg
