#!/usr/bin/env bash
# Training-step throughput of mixgrad vs PyTorch on the same models, same thread count, in one run.
#   bench/compare_train.sh [THREADS] [REPS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
reps=${2:-3}
ours=$(OMP_NUM_THREADS=$threads build/mixgrad-bench train --threads "$threads" --reps "$reps")
theirs=$(OMP_NUM_THREADS=$threads /usr/bin/python3 bench/torch_train.py --threads "$threads" --reps "$reps")
echo "$ours" | grep '^#'
echo "$theirs" | grep '^#'
printf '%-18s %14s %14s %8s %10s\n' model mixgrad_tok/s torch_tok/s ratio of_peak
join <(echo "$ours" | grep -v '^#' | sort) <(echo "$theirs" | grep -v '^#' | sort) |
  awk '{ printf "%-18s %14.0f %14.0f %7.2fx %10s\n", $1, $3, $7, $3 / $7, $5 }'
