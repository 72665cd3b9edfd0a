#include "bench/process_memory.h"

#include <fstream>
#include <string>

namespace mg::bench {

namespace {
size_t status_kib(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line)) {
    if (line.compare(0, k.size(), k) == 0) return std::stoull(line.substr(k.size()));
  }
  return 0;
}
}  // namespace

size_t peak_rss_bytes() { return status_kib("VmHWM") * 1024; }
size_t current_rss_bytes() { return status_kib("VmRSS") * 1024; }

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return bool(f);
}

}  // namespace mg::bench
