#!/usr/bin/env bash
# Input-representation steps/s of mixgrad vs PyTorch (same models, same step, same thread count)
# in one invocation: ROUNDS rounds, each running mixgrad, then PyTorch as compare_train.sh runs it
# (OMP_NUM_THREADS=THREADS, torch.set_num_threads(THREADS)), then PyTorch again tuned as
# compare_common.sh's torch_tuned_env says (passive OpenMP waiting, an allocator that keeps freed
# memory), so all three see the same load. The headline ratio is against the faster PyTorch run.
# Prints every round and, per model, the median steps/s of each side and the median per-round ratios.
#   bench/compare_represent.sh [THREADS] [ROUNDS] [args for both, e.g. --kind all --batch 8]
# BUILD=<dir> picks the build directory (default: build).
set -euo pipefail
source "$(dirname "$0")/compare_common.sh" "$@"
shift $(( $# < 2 ? $# : 2 ))
echo "# $(date '+%F %T') load: $(load), threads=$threads rounds=$rounds args: $*"
peer_setup
rows() { grep -v '^#' | sed 's/^masked_mixer/mixer/' | awk '{ print $1, $2 }' | sort; }
all=""
for r in $(seq 1 "$rounds"); do
  ours=$(OMP_NUM_THREADS=$threads "$bench" represent --threads "$threads" "$@" 2>/dev/null)
  torch=$(OMP_NUM_THREADS=$threads /usr/bin/python3 bench/torch_represent.py --threads "$threads" "$@" 2>/dev/null)
  tuned=$(env $(torch_tuned_env) OMP_NUM_THREADS=$threads \
            /usr/bin/python3 bench/torch_represent.py --threads "$threads" "$@" 2>/dev/null)
  [ "$r" = 1 ] && { echo "$ours" | grep '^#'; echo "$torch" | grep '^#'; }
  round=$(join <(echo "$ours" | rows) <(echo "$torch" | rows) | join - <(echo "$tuned" | rows) |
          awk -v r="$r" '{ print r, $1, $2, $3, $4 }')
  echo "$round" | awk '{ b = $4 > $5 ? $4 : $5;
    printf "round %s %-20s mixgrad %7.3f  torch %7.3f  torch_tuned %7.3f steps/s  %5.2fx (vs best torch %5.2fx)\n",
           $1, $2, $3, $4, $5, $3 / $4, $3 / b }'
  echo "# load after round $r: $(load)"
  all+="$round"$'\n'
done
printf '%-22s %10s %10s %14s %14s %14s\n' model mixgrad torch torch_tuned ratio_torch ratio_best
echo -n "$all" | /usr/bin/python3 -c '
import sys, statistics as st
rows = {}
for line in sys.stdin:
    if line.strip():
        _, m, a, b, c = line.split()
        rows.setdefault(m, []).append((float(a), float(b), float(c)))
for m, v in sorted(rows.items()):
    med = lambda xs: st.median(list(xs))
    print(f"{m:<22} {med(a for a, _, _ in v):10.3f} {med(b for _, b, _ in v):10.3f} {med(c for _, _, c in v):14.3f} "
          f"{med(a / b for a, b, _ in v):13.2f}x {med(a / max(b, c) for a, b, c in v):13.2f}x")
' 
echo "# steps/s, medians over rounds; ratio_best = mixgrad / the faster PyTorch run of each round"
