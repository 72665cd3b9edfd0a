#pragma once
// The subcommands of the `mixgrad` program. Each takes its arguments (after the subcommand
// name), returns the process exit code, and throws mg::Error for bad input.
#include <string>
#include <vector>

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

}  // namespace mg
