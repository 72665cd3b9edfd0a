#!/usr/bin/env bash
# Training-step tokens/s of mixgrad vs PyTorch (same models, same step, same thread count) in one
# invocation: ROUNDS rounds, each running mixgrad, then PyTorch as torch_train.py runs by default
# (OMP_NUM_THREADS=THREADS, torch.set_num_threads(THREADS)), then PyTorch again tuned as
# compare_common.sh's torch_tuned_env says (passive OpenMP waiting, and tcmalloc or glibc malloc
# thresholds that keep freed memory: without them every step page-faults its activations in
# again, which more than halved PyTorch's speed here, see docs/benchmarks.md), so all three see
# the same load. Prints every round and, per model, the median tokens/s of each side, mixgrad's
# median of_peak, and the median per-round ratios against default PyTorch and against the faster
# PyTorch run of the round.
#   bench/compare_train.sh [THREADS] [ROUNDS] [args for both, e.g. --only mixer_d512 --reps 3]
# PRECISION=bf16 runs both under bf16 autocast (mixgrad --precision bf16, torch_train.py --bf16).
# BUILD=<dir> picks the build directory (default: build).
set -euo pipefail
source "$(dirname "$0")/compare_common.sh" "$@"
shift $(( $# < 2 ? $# : 2 ))
prec=${PRECISION:-f32}
case "$prec" in f32) ours_p=(); torch_p=() ;; bf16) ours_p=(--precision bf16); torch_p=(--bf16) ;;
  *) echo "compare_train.sh: PRECISION must be f32 or bf16, got '$prec'" >&2; exit 2 ;; esac
echo "# $(date '+%F %T') load: $(load), threads=$threads rounds=$rounds precision=$prec args: $*"
peer_setup
# ours: model tokens/s of_peak peak_rss_MiB; torch: model tokens/s peak_rss_MiB
ours_rows() { grep -v '^#' | awk '{ print $1, $3, $5, $7 }' | sort; }
torch_rows() { grep -v '^#' | awk '{ print $1, $3, $4 }' | sort; }
all=""
for r in $(seq 1 "$rounds"); do
  ours=$(OMP_NUM_THREADS=$threads "$bench" train --threads "$threads" "${ours_p[@]}" "$@")
  torch=$(OMP_NUM_THREADS=$threads /usr/bin/python3 bench/torch_train.py --threads "$threads" "${torch_p[@]}" "$@")
  tuned=$(env $(torch_tuned_env) OMP_NUM_THREADS=$threads \
            /usr/bin/python3 bench/torch_train.py --threads "$threads" "${torch_p[@]}" "$@")
  if [ "$r" = 1 ]; then
    echo "$ours" | grep '^#'
    echo "$torch" | grep '^#'
    echo "$tuned" | grep '^# torch peer'
    # The peer's own GEMM against this CPU's FMA peak: below half, PyTorch is not at its best.
    printf '%s\n%s\n' "$ours" "$tuned" | awk '
      /f32 FMA register peak:/ { for (i = 1; i <= NF; i++) if ($i == "peak:") fma = $(i + 1) }
      /torch.mm 2048\^3 f32:/ { for (i = 1; i <= NF; i++) if ($i == "f32:") mm = $(i + 1) }
      END { if (fma > 0 && mm > 0 && mm < 0.5 * fma)
              printf "# WARNING: torch.mm runs at %.0f%% of the f32 FMA peak (%s of %s GFLOP/s): PyTorch is below half of this CPU, so ratios against it flatter mixgrad\n", 100 * mm / fma, mm, fma }'
  fi
  # round model ours torch tuned of_peak ours_rss torch_rss tuned_rss
  round=$(join <(echo "$ours" | ours_rows) <(echo "$torch" | torch_rows) | join - <(echo "$tuned" | torch_rows) |
          awk -v r="$r" '{ print r, $1, $2, $5, $7, $3, $4, $6, $8 }')
  echo "$round" | awk '{ b = $4 > $5 ? $4 : $5;
    printf "round %s %-12s mixgrad %6.0f  torch %6.0f  torch_tuned %6.0f tokens/s  %5.2fx (vs best torch %5.2fx)  of_peak %s  peak RSS MiB %s / %s / %s\n",
           $1, $2, $3, $4, $5, $3 / $4, $3 / b, $6, $7, $8, $9 }'
  echo "# load after round $r: $(load)"
  all+="$round"$'\n'
done
printf '%-14s %9s %9s %14s %9s %12s %11s %11s %11s\n' model mixgrad torch torch_tuned of_peak ratio_torch ratio_best \
  rss_mixgrad rss_torch
echo -n "$all" | /usr/bin/python3 -c '
import sys, statistics as st
rows = {}
for line in sys.stdin:
    if line.strip():
        _, m, a, b, c, p, ra, rb, rc = line.split()
        rows.setdefault(m, []).append((float(a), float(b), float(c), float(p.rstrip("%")), float(ra),
                                       min(float(rb), float(rc))))
med = lambda xs: st.median(list(xs))
for m, v in sorted(rows.items()):
    print(f"{m:<14} {med(x[0] for x in v):9.0f} {med(x[1] for x in v):9.0f} {med(x[2] for x in v):14.0f} "
          f"{med(x[3] for x in v):8.1f}% {med(x[0] / x[1] for x in v):11.2f}x {med(x[0] / max(x[1], x[2]) for x in v):10.2f}x"
          f" {med(x[4] for x in v):11.0f} {med(x[5] for x in v):11.0f}")
'
echo "# tokens/s, medians over rounds; of_peak: mixgrad against its measured GEMM peak (mixgrad-bench train);"
echo "# ratio_best = mixgrad / the faster PyTorch run of each round; rss_*: process peak resident MiB while that"
echo "# model trained (reset before it was built; PyTorch: the smaller of its two runs), medians over rounds"
