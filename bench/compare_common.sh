# The common start of bench/compare_represent.sh and bench/compare_train.sh, sourced with their
# arguments: the repository root as working directory, threads and rounds from the first two
# arguments (default 2 and 3), the mixgrad-bench of $BUILD (default: build), and load(), the
# load averages for the log. The caller shifts the two arguments away itself.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
threads=${1:-2}
rounds=${2:-3}
bench=${BUILD:-build}/mixgrad-bench
load() { cut -d' ' -f1-3 /proc/loadavg; }
# Give the peers their best: mixgrad-bench restarts itself with the OPENBLAS_CORETYPE that suits
# this CPU where OpenBLAS (or the environment) picks a core without its AVX-512 kernels; `peer
# --env` prints that setting, which is exported here so PyTorch (same libopenblas) gets it too.
# `peer` then prints the CPU, its ISA, the OpenBLAS core and how it was chosen, and checks
# OpenBLAS's SGEMM against the FMA peak (a warning below half of it).
peer_setup() {
  [ -x "$bench" ] || { echo "$(basename "$0"): no $bench; build it first (docs/benchmarks.md)" >&2; exit 1; }
  eval "$("$bench" peer --env)"
  OMP_NUM_THREADS=$threads "$bench" peer --threads "$threads"
}
