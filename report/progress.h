#pragma once
// A one-line terminal progress bar: "[#####.....] 512/2000 loss 3.21 | 1.2k tok/s | ETA 4m10s".
// On a terminal it redraws in place; otherwise (logs, CI) it prints a line every `log_every`
// updates so logs stay readable.
#include <chrono>
#include <string>

namespace mg::report {

class ProgressBar {
 public:
  explicit ProgressBar(int64_t total, std::string label = "", int64_t log_every = 50);
  // `current` steps done; `info` is appended (e.g. "loss 3.21"); `units` counts throughput units
  // (tokens) done since start, shown per second when > 0.
  void update(int64_t current, const std::string& info, double units = 0);
  void finish(const std::string& info);
  static std::string format_duration(double seconds);  // "1h02m", "4m10s", "12.3s"

 private:
  int64_t total_, log_every_;
  std::string label_;
  std::chrono::steady_clock::time_point start_;
  int64_t first_ = -1;  // step at which timing started (resumed runs)
  bool tty_;
  int64_t last_logged_ = -1;
};

}  // namespace mg::report
