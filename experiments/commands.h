#pragma once
// The subcommands of the `mixgrad` program. Each takes its arguments (after the subcommand
// name), returns the process exit code, and throws mg::Error for bad input.
#include <string>
#include <vector>

namespace mg {

int run_example(const std::vector<std::string>& args);

}  // namespace mg
