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

# PyTorch's best process settings here, measured 2026-12-03 (docs/benchmarks.md, "Giving the peer
# its best"): passive OpenMP waiting, and an allocator that keeps freed memory. PyTorch's CPU
# tensors come from malloc; glibc serves large blocks with mmap and unmaps them on free, so every
# step faults its activations in again, page by page (torch.mm 2048^3 with a fresh output: 180
# vs 390 GFLOP/s reused). tcmalloc (libtcmalloc-minimal4) where installed, as PyTorch's CPU
# performance guides recommend; otherwise glibc's own thresholds, raised so it keeps the memory.
torch_tuned_env() {
  local tc=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4
  if [ -e "$tc" ]; then
    echo "OMP_WAIT_POLICY=PASSIVE LD_PRELOAD=$tc"
  else
    echo "OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_THRESHOLD_=4294967296 MALLOC_TRIM_THRESHOLD_=4294967296"
  fi
}
