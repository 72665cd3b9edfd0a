// mixgrad-bench: micro-benchmarks. Usage: mixgrad-bench <command> [options]
// Add a command by declaring its entry point below and adding a row to kCommands.
#include <cstdio>
#include <cstring>

#include "bench/peer_config.h"

int bench_gemm(int argc, char** argv);
int bench_ops(int argc, char** argv);
int bench_train(int argc, char** argv);
int bench_attention_memory(int argc, char** argv);
int bench_represent(int argc, char** argv);
int bench_peak(int argc, char** argv);
int bench_peer(int argc, char** argv);

namespace {

struct Command {
  const char* name;
  int (*fn)(int argc, char** argv);  // argv[0] is the command name
  const char* help;
};

constexpr Command kCommands[] = {
    {"gemm", &bench_gemm,
     "[--threads N] [--reps R] [--only square|mixer] [--dtype f32|bf16]  mixgrad SGEMM vs OpenBLAS (bf16: our "
     "bf16 GEMM vs our SGEMM): square sizes and masked-mixer training shapes"},
    {"ops", &bench_ops, "[--threads N] [--reps R] [--only NAME]  fused ops fwd+bwd (see bench/compare_ops.sh)"},
    {"attention-memory", &bench_attention_memory, "[--threads N]  peak memory of fused attention at T=256..2048"},
    {"train", &bench_train,
     "[--threads N] [--reps R] [--only NAME] [--device cpu|cuda] [--precision f32|bf16] [--batch B] [--d 256,512] "
     "[--n-ctx 512] [--layers 8] [--vocab 4096] [--heads 4] [--warmup W] [--peak-tflops X] [--phases] [--memory]  "
     "training-step tokens/s, fraction of peak and peak memory (see "
     "bench/compare_train.sh, bench/compare_train_gpu.sh)"},
    {"peer", &bench_peer,
     "[--threads N] [--env]  the peers' configuration here (CPU, ISA, OpenBLAS core) and OpenBLAS SGEMM vs the FMA "
     "peak"},
    {"peak", &bench_peak, "[--threads N]  f32 FMA and bf16 dot register peaks of this CPU vs mixgrad's GEMMs"},
    {"represent", &bench_represent,
     "[--threads N] [--reps R] [--steps S] [--batch B] [--d D] [--layers L] [--kind mixer|llama|all]  "
     "input-gradient steps/s (see bench/compare_represent.sh)"},
};

void usage(const char* prog) {
  std::fprintf(stderr, "usage: %s <command> [options]\ncommands:\n", prog);
  for (const Command& c : kCommands) std::fprintf(stderr, "  %-8s %s\n", c.name, c.help);
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything calls OpenBLAS: give it the right core where it misdetects this CPU.
  mg::bench::ensure_openblas_core(argv);
  if (argc < 2 || std::strcmp(argv[1], "-h") == 0 || std::strcmp(argv[1], "--help") == 0) {
    usage(argv[0]);
    return argc < 2 ? 2 : 0;
  }
  for (const Command& c : kCommands) {
    if (std::strcmp(argv[1], c.name) == 0) return c.fn(argc - 1, argv + 1);
  }
  std::fprintf(stderr, "unknown command '%s'\n", argv[1]);
  usage(argv[0]);
  return 2;
}
