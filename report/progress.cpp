#include "report/progress.h"

#include <cstdio>
#include <unistd.h>

namespace mg::report {

ProgressBar::ProgressBar(int64_t total, std::string label, int64_t log_every)
    : total_(total), log_every_(log_every > 0 ? log_every : 1), label_(std::move(label)),
      start_(std::chrono::steady_clock::now()), tty_(::isatty(STDERR_FILENO)) {}

std::string ProgressBar::format_duration(double s) {
  char b[32];
  if (!(s >= 0) || s > 1e8) return "?";
  if (s < 60) std::snprintf(b, sizeof b, "%.1fs", s);
  else if (s < 3600) std::snprintf(b, sizeof b, "%dm%02ds", int(s) / 60, int(s) % 60);
  else std::snprintf(b, sizeof b, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
  return b;
}

void ProgressBar::update(int64_t current, const std::string& info, double units) {
  if (first_ < 0) {
    first_ = current;
    start_ = std::chrono::steady_clock::now();
  }
  if (!tty_ && current - last_logged_ < log_every_ && current != total_) return;
  last_logged_ = current;
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double done = double(current - first_);
  double eta = done > 0 ? el / done * double(total_ - current) : -1;
  const int width = 24;
  int fill = total_ > 0 ? int(double(width) * double(current) / double(total_)) : 0;
  std::string bar(size_t(fill), '#');
  bar += std::string(size_t(width - fill), '.');
  char rate[48] = "";
  if (units > 0 && el >= 1.0) {  // shorter windows give meaningless rates
    double r = units / el;
    if (r >= 1e6) std::snprintf(rate, sizeof rate, " | %.2fM tok/s", r / 1e6);
    else if (r >= 1e3) std::snprintf(rate, sizeof rate, " | %.1fk tok/s", r / 1e3);
    else std::snprintf(rate, sizeof rate, " | %.0f tok/s", r);
  }
  std::fprintf(stderr, "%s%s[%s] %lld/%lld %s%s | ETA %s%s", tty_ ? "\r\033[K" : "", label_.empty() ? "" : (label_ + " ").c_str(),
               bar.c_str(), (long long)current, (long long)total_, info.c_str(), rate, format_duration(eta).c_str(),
               tty_ ? "" : "\n");
  std::fflush(stderr);
}

void ProgressBar::finish(const std::string& info) {
  double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "%s%s done in %s %s\n", tty_ ? "\r\033[K" : "", label_.c_str(), format_duration(el).c_str(),
               info.c_str());
}

}  // namespace mg::report
