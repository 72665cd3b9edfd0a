#!/usr/bin/env bash
# Data-parallel throughput on one machine (docs/distributed.md, "Measured"): training tokens/s of
# `mpirun -np 2 mixgrad train` with 1 OpenMP thread per rank against one process with 2 threads,
# through the real program, on the quick mixer (experiments/configs/quick_mixer.yaml) and on the
# benchmark's d=512 mixer (n_ctx 512, 8 layers, vocab 4096, 8 sequences per step: bench_train.cpp).
# Both sides take the same global batch per step (2 ranks x B/2 sequences, or 1 process x B).
# The 2-rank side runs twice: with the all-reduce overlapped with backward (the default) and with
# train.reduce_overlap: false. The runs are interleaved, ROUNDS times, so that all see the same
# load; each run's figure is the median over its steps after WARMUP (the last step, which also
# validates and checkpoints, is left out) of the tokens/s between consecutive metrics.csv rows.
#   bench/compare_dp.sh [ROUNDS=3] [QUICK_STEPS=40] [D512_STEPS=8] [WARMUP=2]
# BUILD=<dir> picks the build directory (default: build); it must have MPI (CMake reports it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-3}
quick_steps=${2:-40}
d512_steps=${3:-8}
warmup=${4:-2}
app=${BUILD:-build}/mixgrad
[ -x "$app" ] || { echo "compare_dp.sh: no $app; build it first" >&2; exit 1; }
mpirun=$(command -v mpirun || true)
[ -n "$mpirun" ] || { echo "compare_dp.sh: no mpirun (install openmpi-bin)" >&2; exit 1; }
root=()
[ "$(id -u)" = 0 ] && root=(--allow-run-as-root)
work=$(mktemp -d /tmp/compare_dp.XXXXXX)
trap 'rm -rf "$work"' EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }

# config NAME BATCH THREADS STEPS OVERLAP [model/data lines]: the quick mixer's YAML with the
# batch, threads and steps replaced, validation only at the last step on 1 batch, and no
# checkpoints before the last step.
config() {
  local name=$1 batch=$2 threads=$3 steps=$4 overlap=$5 model=$6
  local f="$work/$name.yaml"
  sed -e "s/^  batch_size: .*/  batch_size: $batch/" -e "s/^  steps: .*/  steps: $steps/" \
      -e 's/^  eval_every: .*/  eval_every: 0/' -e 's/^  eval_batches: .*/  eval_batches: 1/' \
      -e 's/^  checkpoint_every: .*/  checkpoint_every: 0/' -e 's/^  log_every: .*/  log_every: 1/' \
      -e 's/^  warmup_steps: .*/  warmup_steps: 1/' experiments/configs/quick_mixer.yaml > "$f"
  printf '  threads: %s\n  reduce_overlap: %s\n' "$threads" "$overlap" >> "$f"
  if [ "$model" = d512 ]; then
    sed -i -e 's/^  d_model: .*/  d_model: 512/' -e 's/^  n_layers: .*/  n_layers: 8/' \
           -e 's/^  n_ctx: .*/  n_ctx: 512/' -e 's/^  batching: .*/  batching: packed/' "$f"
  fi
  echo "$f"
}

# median tokens/s of a run directory's steps warmup+1 .. steps-1
rate() {
  awk -F, -v w="$warmup" 'NR == 1 { next }
    { step = $1; tok = $6; sec = $7
      if (step > w + 1 && prev_sec != "" && sec > prev_sec) { n++; r[n] = (tok - prev_tok) / (sec - prev_sec) }
      prev_tok = tok; prev_sec = sec; last = n }
    END { n = last - 1; if (n < 1) { print "nan"; exit }   # drop the last step (validation, checkpoint)
          for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
          printf "%.0f\n", n % 2 ? r[(n + 1) / 2] : (r[n / 2] + r[n / 2 + 1]) / 2 }' "$1/metrics.csv"
}

run_one() {  # run_one KIND(1x2|2x1|2x1s) MODEL CONFIG -> prints tokens/s
  local kind=$1 model=$2 cfg=$3 out="$work/run_$1_$2"
  rm -rf "$out"
  if [ "$kind" = 1x2 ]; then
    OMP_NUM_THREADS=2 "$app" train "$cfg" --out-dir "$out" > "$work/log" 2>&1
  else
    "$mpirun" -np 2 --bind-to none "${root[@]}" -x OMP_NUM_THREADS=1 "$app" train "$cfg" --out-dir "$out" > "$work/log" 2>&1
  fi || { echo "compare_dp.sh: $kind $model failed:" >&2; tail -5 "$work/log" >&2; exit 1; }
  rate "$out"
}

echo "# $(date -u '+%F %T') UTC, $(nproc) CPUs, load: $(load); rounds=$rounds warmup=$warmup" \
     "quick_steps=$quick_steps d512_steps=$d512_steps"
echo "# $("$mpirun" --version 2>&1 | head -1); mpirun --bind-to none; metrics from mixgrad train's metrics.csv"
declare -A cfg
for model in quick d512; do
  if [ "$model" = quick ]; then B=16 S=$quick_steps; else B=8 S=$d512_steps; fi
  cfg[$model,1x2]=$(config "${model}_1x2" "$B" 2 "$S" true "$model")
  cfg[$model,2x1]=$(config "${model}_2x1" $((B / 2)) 1 "$S" true "$model")
  cfg[$model,2x1s]=$(config "${model}_2x1s" $((B / 2)) 1 "$S" false "$model")
done
# The first run of a data config tokenizes the corpus into the cache; not timed.
for model in quick d512; do
  "$app" train "${cfg[$model,1x2]}" --steps 1 --out-dir "$work/prime_$model" > /dev/null 2>&1 ||
    { echo "compare_dp.sh: priming $model failed" >&2; exit 1; }
done
results="$work/results"
: > "$results"
for r in $(seq 1 "$rounds"); do
  for model in quick d512; do
    for kind in 1x2 2x1 2x1s; do
      t=$(run_one "$kind" "$model" "${cfg[$model,$kind]}")
      echo "$r $model $kind $t" >> "$results"
    done
    printf 'round %s %-6s 1 process x 2 threads %7s   2 ranks x 1 thread %7s   (no overlap %7s) tokens/s   load %s\n' \
      "$r" "$model" $(awk -v r="$r" -v m="$model" '$1 == r && $2 == m { printf "%s ", $4 }' "$results") "$(load)"
  done
done
echo "# medians over $rounds rounds (tokens/s):"
printf '%-6s %18s %18s %22s %10s\n' model "1 proc x 2 thr" "2 ranks x 1 thr" "2 ranks, no overlap" "2x1 / 1x2"
for model in quick d512; do
  med() { awk -v m="$model" -v k="$1" '$2 == m && $3 == k { print $4 }' "$results" | sort -g |
          awk '{ v[NR] = $1 } END { printf "%.0f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
  a=$(med 1x2) b=$(med 2x1) c=$(med 2x1s)
  printf '%-6s %18s %18s %22s %10.2f\n' "$model" "$a" "$b" "$c" "$(awk -v a="$a" -v b="$b" 'BEGIN { print b / a }')"
done
echo "# load at end: $(load)"
