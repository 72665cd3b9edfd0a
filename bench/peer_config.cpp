#include "bench/peer_config.h"

#include <strings.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <set>

#ifdef MG_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace mg::bench {

namespace {
// Set by ensure_openblas_core in the restarted process, so the header can say who chose the core.
constexpr const char* kRestartMark = "MG_BENCH_SET_OPENBLAS_CORETYPE";
}  // namespace

CpuInfo cpu_info() {
  CpuInfo c;
  std::ifstream f("/proc/cpuinfo");
  std::string line, flags;
  while (std::getline(f, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    const std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    if (key == "model name" && c.model.empty()) c.model = value;
    if (key == "flags" && flags.empty()) flags = value;
  }
  std::set<std::string> have;
  std::istringstream ss(flags);
  for (std::string w; ss >> w;) have.insert(w);
  for (const char* flag : {"avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "avx512_fp16",
                           "amx_tile", "amx_bf16"}) {
    if (have.count(flag)) c.isa += (c.isa.empty() ? "" : " ") + std::string(flag);
  }
  c.avx512f = have.count("avx512f") && have.count("avx512bw") && have.count("avx512vl");
  c.avx512_bf16 = have.count("avx512_bf16");
  c.avx512_fp16 = have.count("avx512_fp16");
  c.amx_bf16 = have.count("amx_bf16");
  if (c.model.empty()) c.model = "unknown";
  return c;
}

std::string openblas_corename() {
#ifdef MG_HAVE_OPENBLAS
  const char* name = openblas_get_corename();
  return name ? name : "unknown";
#else
  return "";
#endif
}

std::string openblas_core_fix(const CpuInfo& cpu, const std::string& detected) {
  if (!cpu.avx512f || detected.empty()) return "";
  // The 0.3.21 cores with AVX-512 SGEMM kernels (Cooperlake and SapphireRapids add bf16 ones).
  for (const char* good : {"SkylakeX", "Cooperlake", "SapphireRapids"}) {
    if (strcasecmp(detected.c_str(), good) == 0) return "";
  }
  // SkylakeX: the AVX-512 SGEMM kernel every AVX-512 core runs (measured ~4.7x the fallback on
  // the project's Xeon at 2048^3); it uses no instruction beyond AVX-512F/BW/VL/DQ.
  return "SkylakeX";
}

void ensure_openblas_core(char** argv) {
#ifdef MG_HAVE_OPENBLAS
  if (std::getenv(kRestartMark) || std::getenv("MG_BENCH_KEEP_OPENBLAS_CORETYPE")) return;
  const std::string core = openblas_corename();
  const std::string fix = openblas_core_fix(cpu_info(), core);
  if (fix.empty()) return;
  // A core forced by the environment is overridden as well: the machines this project runs on
  // have set OPENBLAS_CORETYPE=Haswell for everyone, a kernel without AVX-512 on an AVX-512 CPU.
  const char* env = std::getenv("OPENBLAS_CORETYPE");
  const std::string was = env ? std::string("OPENBLAS_CORETYPE=") + env + " in the environment"
                              : "detected '" + core + "'";
  std::fprintf(stderr, "mixgrad-bench: OpenBLAS runs core '%s' (%s) on a CPU with AVX-512; restarting with "
               "OPENBLAS_CORETYPE=%s so the comparison gets OpenBLAS at its best "
               "(MG_BENCH_KEEP_OPENBLAS_CORETYPE=1 keeps it)\n",
               core.c_str(), was.c_str(), fix.c_str());
  setenv("OPENBLAS_CORETYPE", fix.c_str(), 1);
  setenv(kRestartMark, was.c_str(), 1);
  execv("/proc/self/exe", argv);
  std::fprintf(stderr, "mixgrad-bench: restart failed (%s); OpenBLAS stays on its own choice\n", std::strerror(errno));
#else
  (void)argv;
#endif
}

void print_peer_config(std::FILE* out) {
  const CpuInfo cpu = cpu_info();
  std::fprintf(out, "# cpu: %s | isa: %s\n", cpu.model.c_str(), cpu.isa.c_str());
  const std::string core = openblas_corename();
  if (core.empty()) {
    std::fprintf(out, "# OpenBLAS: not linked (no comparison)\n");
    return;
  }
  const char* env = std::getenv("OPENBLAS_CORETYPE");
  const char* mark = std::getenv(kRestartMark);
  std::string how = "detected by OpenBLAS";
  if (mark) how = std::string("OPENBLAS_CORETYPE=") + env + " set by mixgrad-bench; before: " + mark;
  else if (env) how = std::string("OPENBLAS_CORETYPE=") + env + " from the environment";
  std::fprintf(out, "# OpenBLAS core: %s (%s)\n", core.c_str(), how.c_str());
  const std::string fix = openblas_core_fix(cpu, core);
  if (!fix.empty()) {
    std::fprintf(out, "# WARNING: OpenBLAS runs core '%s' without AVX-512 kernels on an AVX-512 CPU; "
                 "OPENBLAS_CORETYPE=%s would be its best\n", core.c_str(), fix.c_str());
  }
}

}  // namespace mg::bench
