#pragma once
// `mixgrad profile`: one training step timed per op and per module, forward and backward
// separately (autograd/instrument.h), against the separately measured step time.
//
// Each op's time is its own (the clock starts at the op's entry and stops at its output, see
// OpScope), backward nodes time their apply() (ops inside a node are part of it), the engine's
// summing of gradients is "grad_sum", and the optimizer phase is timed as its three calls
// (clip_grad_norm, adamw_step, zero_grad). What no op owns -- module code between ops, the
// engine's bookkeeping -- is the gap between the op sum and the step time: coverage < 100%.
#include <cstdint>
#include <string>
#include <vector>

#include "experiments/run_config.h"

namespace mg {

struct ProfileOptions {
  std::string config;
  int64_t steps = 1;           // unobserved and profiled steps each, alternating, after one warm-up step
  std::string out_dir = "runs/profile";
  double peak_gflops = 0;      // 0: measure (ops/peak.h)
  int64_t top = 25;            // rows of the op table
};

struct ProfileRow {
  std::string key;             // op name or module path
  std::string phase;           // forward | backward | optimizer
  int64_t calls = 0;
  double seconds = 0, flops = 0, bytes = 0;  // per step
};

struct ProfileResult {
  std::string label;           // config name and model summary
  double step_seconds = 0;     // an unobserved step (the fastest of `steps`)
  double observed_step_seconds = 0;  // a profiled step's wall time (observer overhead included), mean
  double op_seconds = 0;       // the sum of every op's own time in a profiled step (the fastest of `steps`)
  double forward_seconds = 0, backward_seconds = 0, optimizer_seconds = 0;  // unobserved, per phase
  double peak_gflops = 0;
  bool peak_measured = true;   // false: given by --peak-gflops
  std::string peak_dtype;      // the measured peak's operands: bf16 for a bf16 run, else f32
  std::vector<ProfileRow> by_op;      // (op, phase), slowest first
  std::vector<ProfileRow> by_module;  // (module with block indices as '*', phase), slowest first
  std::string trace_json;             // Chrome trace of the last profiled step
  double coverage() const { return step_seconds > 0 ? op_seconds / step_seconds : 0; }
};

ProfileOptions parse_profile_args(const std::vector<std::string>& argv, bool& help);
ProfileResult profile_step(const ProfileOptions& o);
std::string format_profile(const ProfileResult& r, int64_t top);

}  // namespace mg
