#!/usr/bin/env bash
# GPU training-step throughput of mixgrad vs PyTorch eager on the same models and configuration,
# in one run (issue #7 point 3): the d=512, 8-layer, n_ctx=512, vocab-4096 masked mixer and
# Llama-style transformer, f32 and bf16 autocast, after the CUDA parity tests. Builds nothing:
# build mixgrad-bench and test_cuda first (docs/benchmarks.md, "GPU training step").
#   bench/compare_train_gpu.sh [REPS] [BATCH]
# Environment: BUILD (build dir, default build), PYTHON (the python3 that has a CUDA torch,
# default python3), PEAK_TFLOPS (the GPU's dense bf16 peak, default 989 = H100 SXM), D (widths,
# default 512), PHASES=1 (also print mixgrad's per-phase times), SKIP_TESTS=1.
set -euo pipefail
cd "$(dirname "$0")/.."
reps=${1:-20}
batch=${2:-8}
build=${BUILD:-build}
python=${PYTHON:-python3}
peak=${PEAK_TFLOPS:-989}
widths=${D:-512}
bench="$build/mixgrad-bench"
[ -x "$bench" ] || { echo "compare_train_gpu.sh: no $bench; build it first (docs/benchmarks.md)" >&2; exit 1; }

rev="no git checkout"
if git rev-parse --git-dir >/dev/null 2>&1; then
  rev="commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- || echo ' with uncommitted changes')"
fi
echo "# $(date -u '+%F %T') UTC, $rev"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader 2>/dev/null | sed 's/^/# gpu: /' || true
"$python" -c 'import torch; print("# torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NONE")'

tests_rc=0
if [ "${SKIP_TESTS:-0}" != 1 ]; then
  echo "== CUDA parity tests (ctest -R test_cuda)"
  (cd "$build" && ctest -R test_cuda --output-on-failure) || tests_rc=$?
  [ "$tests_rc" = 0 ] || echo "!! CUDA tests FAILED (ctest exit $tests_rc): throughput below is of a backend that fails parity"
fi

phases=()
[ "${PHASES:-0}" = 1 ] && phases=(--phases)
rows=""
for prec in f32 bf16; do
  echo "== $prec"
  torch_flag=()
  [ "$prec" = bf16 ] && torch_flag=(--bf16)
  ours=$("$bench" train --device cuda --precision "$prec" --batch "$batch" --d "$widths" --reps "$reps" \
    --peak-tflops "$peak" ${phases[@]+"${phases[@]}"})
  theirs=$("$python" bench/torch_train.py --device cuda ${torch_flag[@]+"${torch_flag[@]}"} --batch "$batch" --d "$widths" \
    --reps "$reps")
  echo "$ours" | grep '^#'
  echo "$theirs" | grep '^#'
  rows+=$(LC_ALL=C join <(echo "$ours" | grep -v '^#' | LC_ALL=C sort) <(echo "$theirs" | grep -v '^#' | LC_ALL=C sort) |
    awk -v p="$prec" '{ sub("%", "", $5); printf "%s %s %s %s %s %s %s %s\n", $1, p, $3, $9, $4, $5, $6, $10 }')
  rows+=$'\n'
done

echo "== training step (fwd+bwd+clip+AdamW), B=$batch n_ctx=512 V=4096 L=8, median of $reps; peak $peak TFLOP/s dense bf16"
printf '%-12s %-5s %14s %14s %8s %16s %16s %14s %12s %12s\n' model prec mixgrad_tok/s torch_tok/s ratio mixgrad_TFLOP/s \
  mixgrad_of_peak torch_of_peak mixgrad_MiB torch_MiB
echo -n "$rows" | awk '{ printf "%-12s %-5s %14.0f %14.0f %7.2fx %16.1f %15.1f%% %13.1f%% %12.0f %12.0f\n",
  $1, $2, $3, $4, $3 / $4, $5, $6, $6 * $4 / $3, $7, $8 }'
echo "# *_MiB: peak device memory held by tensors (mixgrad's allocator / torch.cuda.max_memory_allocated)"
echo "# target (issue #7): ratio >= 1.30 in bf16; of_peak = model FLOPs/s (3x forward matmul FLOPs, causal halves) / peak"
exit "$tests_rc"
