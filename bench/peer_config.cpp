#include "bench/peer_config.h"

#include <strings.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <utility>

#ifdef MG_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace mg::bench {

namespace {
// Set by ensure_openblas_core in the restarted process, so the header can say who chose the core.
constexpr const char* kRestartMark = "MG_BENCH_SET_OPENBLAS_CORETYPE";

// The value of the first "key<tabs>: value" line of a /proc/cpuinfo text (the first CPU's), "" when absent.
std::string cpuinfo_field(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0) continue;
    const auto key_end = line.find_last_not_of(" \t", colon - 1);
    if (key_end == std::string::npos || line.compare(0, key_end + 1, key) != 0 || key_end + 1 != key.size()) continue;
    const auto begin = line.find_first_not_of(" \t", colon + 1);
    if (begin == std::string::npos) return "";
    return line.substr(begin, line.find_last_not_of(" \t\r") + 1 - begin);
  }
  return "";
}

// The microarchitecture of a known (vendor, family, model), nullptr otherwise. AMD's ranges are those
// from which Linux sets X86_FEATURE_ZEN1..ZEN5 (bsp_init_amd, arch/x86/kernel/cpu/amd.c; family 0x1a
// also holds Zen 6 models, 0x50-0x5f, 0x80-0xaf and 0xc0-0xcf, left unnamed here); Intel's are the
// server cores of arch/x86/include/asm/intel-family.h.
const char* microarchitecture(const std::string& vendor, long family, long model) {
  const auto in = [model](long lo, long hi) { return model >= lo && model <= hi; };
  if (vendor == "AuthenticAMD" && family == 0x17) {
    if (in(0x00, 0x2f) || in(0x50, 0x5f)) return "Zen/Zen+";
    if (in(0x30, 0x4f) || in(0x60, 0x7f) || in(0x90, 0x91) || in(0xa0, 0xaf)) return "Zen 2";
  }
  if (vendor == "AuthenticAMD" && family == 0x19) {
    if (in(0x00, 0x0f) || in(0x20, 0x5f)) return "Zen 3";
    if (in(0x10, 0x1f) || in(0x60, 0xaf)) return "Zen 4";
  }
  if (vendor == "AuthenticAMD" && family == 0x1a) {
    if (in(0x00, 0x2f) || in(0x40, 0x4f) || in(0x60, 0x7f)) return "Zen 5";
  }
  if (vendor == "GenuineIntel" && family == 6) {
    switch (model) {
      case 0x55: return "Skylake-SP/Cascade Lake/Cooper Lake";
      case 0x6a: return "Ice Lake-SP";
      case 0x6c: return "Ice Lake-D";
      case 0x8f: return "Sapphire Rapids";
      case 0xcf: return "Emerald Rapids";
      case 0xad: return "Granite Rapids";
      case 0xae: return "Granite Rapids-D";
      default: break;
    }
  }
  return nullptr;
}

// A decimal cpuinfo number, -1 when absent or not a number.
long cpuinfo_number(const std::string& value) {
  if (value.empty()) return -1;
  char* end = nullptr;
  const long v = std::strtol(value.c_str(), &end, 10);
  return *end == '\0' && v >= 0 ? v : -1;
}
}  // namespace

std::string cpu_description(const std::string& cpuinfo) {
  std::string name = cpuinfo_field(cpuinfo, "model name");
  if (name.empty()) name = "unknown";
  const std::string vendor = cpuinfo_field(cpuinfo, "vendor_id"), family = cpuinfo_field(cpuinfo, "cpu family"),
                    model = cpuinfo_field(cpuinfo, "model"), stepping = cpuinfo_field(cpuinfo, "stepping");
  std::string ids = vendor;
  const std::pair<const char*, std::string> numbers[] = {{"family", family}, {"model", model}, {"stepping", stepping}};
  for (const auto& [label, value] : numbers) {
    if (!value.empty()) ids += (ids.empty() ? "" : " ") + std::string(label) + " " + value;
  }
  if (ids.empty()) return name;
  const char* arch = microarchitecture(vendor, cpuinfo_number(family), cpuinfo_number(model));
  return name + " (" + ids + (arch ? std::string(": ") + arch : "") + ")";
}

CpuInfo cpu_info() {
  CpuInfo c;
  std::ifstream f("/proc/cpuinfo");
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  c.model = cpuinfo_field(text, "model name");
  c.description = cpu_description(text);
  const std::string flags = cpuinfo_field(text, "flags");
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
  std::fprintf(out, "# cpu: %s | isa: %s\n", cpu.description.c_str(), cpu.isa.c_str());
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
