#pragma once
// The subcommands of the `mixgrad` program. Each takes its arguments (after the subcommand
// name), returns the process exit code, and throws mg::Error for bad input.
#include <string>
#include <vector>

#include "experiments/lm_run.h"

namespace mg {

int run_example(const std::vector<std::string>& args);
int run_tokenize(const std::vector<std::string>& args);
int run_train(const std::vector<std::string>& args);
int run_generate(const std::vector<std::string>& args);
int run_eval(const std::vector<std::string>& args);
int run_reproduce(const std::vector<std::string>& args);
int run_retrieve(const std::vector<std::string>& args);
int run_represent(const std::vector<std::string>& args);
int run_autoencode(const std::vector<std::string>& args);
int run_export(const std::vector<std::string>& args);  // experiments/export.h
int run_import(const std::vector<std::string>& args);  // experiments/import.h
int run_audit(const std::vector<std::string>& args);
int run_profile(const std::vector<std::string>& args);  // experiments/op_profile.h
int run_graph(const std::vector<std::string>& args);    // experiments/autograd_graph.h

// `CONFIG.yaml [--steps N] [--out-dir D] [--resume] [--stop-after N]` of `train` and `autoencode
// train`: the config with the overrides applied and validated; o gets resume and stop_after.
RunConfig parse_train_args(const std::string& command, const std::vector<std::string>& argv, TrainOptions& o);

}  // namespace mg
