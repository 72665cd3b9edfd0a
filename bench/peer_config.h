#pragma once
// What the benchmarks' peers (OpenBLAS, PyTorch) run with on this machine, so every comparison
// can say it gave the peer its best configuration.
//
// Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) picks its kernels from a table of known CPU models.
// On a core newer than that table (an Intel Xeon with AVX512_FP16, a Sapphire Rapids-class core)
// it falls back to a pre-AVX-512 kernel and runs several times below its best; the
// OPENBLAS_CORETYPE environment variable overrides the choice, but only before the library is
// loaded. mixgrad-bench therefore checks at start and, where the core in use (detected, or forced
// by an OPENBLAS_CORETYPE already in the environment) lacks the AVX-512 kernels of this CPU,
// restarts itself once with the variable set (and says so); the compare scripts export the same
// variable to PyTorch, which loads the same libopenblas.
#include <cstdio>
#include <string>

namespace mg::bench {

struct CpuInfo {
  std::string model;  // /proc/cpuinfo "model name"
  std::string description;  // cpu_description() of /proc/cpuinfo: the model name with its ids
  std::string isa;    // the vector ISA flags that matter to the GEMMs, space separated
  bool avx512f = false, avx512_bf16 = false, avx512_fp16 = false, amx_bf16 = false;
};
CpuInfo cpu_info();

// The first CPU of a /proc/cpuinfo text described for a benchmark header: its "model name", then
// vendor_id, cpu family, model and stepping (decimal, as cpuinfo gives them) and, where the
// (vendor, family, model) is one of a short table of known server cores, the microarchitecture:
// "AMD EPYC (AuthenticAMD family 26 model 2 stepping 1: Zen 5)". The machines this project runs
// on mask the model name ("AMD EPYC"), so the ids are what tells CPU generations apart. Without
// those fields (not x86) it is the model name alone; "unknown" without that.
std::string cpu_description(const std::string& cpuinfo);

// OpenBLAS's chosen core ("Haswell", "SkylakeX", ...); "" when built without OpenBLAS.
std::string openblas_corename();

// The OPENBLAS_CORETYPE value that gives OpenBLAS its AVX-512 kernels on this CPU when the core it
// picked by itself lacks them, else "". Expects the detected core name from openblas_corename().
std::string openblas_core_fix(const CpuInfo& cpu, const std::string& detected);

// Called first in main: when OpenBLAS misdetects the CPU and OPENBLAS_CORETYPE is unset, sets it
// and re-executes this program (the library reads it only when loaded). Returns normally
// otherwise, or if the restart fails (then the figures carry the warning of print_peer_config).
void ensure_openblas_core(char** argv);

// "# cpu: ...", "# OpenBLAS core: ... (how it was chosen)" lines for a benchmark's header.
void print_peer_config(std::FILE* out);

}  // namespace mg::bench
