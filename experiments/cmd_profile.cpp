// `mixgrad profile`: the CLI of experiments/op_profile.h.
#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "experiments/commands.h"
#include "experiments/op_profile.h"

namespace mg {

namespace {
constexpr const char* kUsage =
    "usage: mixgrad profile CONFIG.yaml [--steps N] [--out DIR] [--peak-gflops G] [--top K]\n"
    "  times a training step of the config's model per op and per module, forward and backward apart,\n"
    "  on a random batch of the config's shape: after a warm-up step, N unobserved and N profiled steps\n"
    "  alternate (N = 1 by default; more steadies the figures on a busy machine): the step time and the\n"
    "  per-op sum are the fastest of N, the rows means. FLOPs, bytes and the fraction of the measured GEMM peak\n"
    "  (or G). Writes DIR/profile.txt\n"
    "  and DIR/trace.json (chrome://tracing, ui.perfetto.dev); DIR defaults to runs/profile.\n";
}  // namespace

int run_profile(const std::vector<std::string>& argv) {
  bool help = false;
  ProfileOptions o = parse_profile_args(argv, help);
  if (help) {
    std::printf("%s", kUsage);
    return 0;
  }
  ProfileResult r = profile_step(o);
  const std::string text = format_profile(r, o.top);
  std::filesystem::create_directories(o.out_dir);
  write_file_atomically(o.out_dir + "/profile.txt", text);
  write_file_atomically(o.out_dir + "/trace.json", r.trace_json);
  std::printf("%s\nwrote %s/profile.txt and %s/trace.json\n", text.c_str(), o.out_dir.c_str(), o.out_dir.c_str());
  return 0;
}

}  // namespace mg
