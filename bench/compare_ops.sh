#!/usr/bin/env bash
# Runs mixgrad's and PyTorch's op benchmarks back to back (same shapes, same thread count) and
# prints the speed ratio per op (>1 means mixgrad is faster). Needs Debian's python3-torch.
#   bench/compare_ops.sh [THREADS] [REPS]
set -euo pipefail
source "$(dirname "$0")/compare_common.sh" "${1:-2}" 1
reps=${2:-7}
peer_setup
ours=$(OMP_NUM_THREADS=$threads "$bench" ops --threads "$threads" --reps "$reps")
theirs=$(env $(torch_tuned_env) OMP_NUM_THREADS=$threads /usr/bin/python3 bench/torch_ops.py --threads "$threads" --reps "$reps")
echo "$ours" | head -1
echo "$theirs" | head -1
printf '%-28s %12s %12s %8s\n' op mixgrad_ms torch_ms speedup
join <(echo "$ours" | grep -v '^#' | sort) <(echo "$theirs" | grep -v '^#' | sort) |
  awk '{ printf "%-28s %12.3f %12.3f %7.2fx\n", $1, $2, $3, $3 / $2 }'
