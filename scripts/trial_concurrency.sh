#!/usr/bin/env bash
# Two `train` runs into one directory: the second is refused (non-zero exit, one message naming
# the directory and the holder) and the first's files are intact: it exits 0, its checkpoint
# loads and evaluates, and its metrics.csv is bit for bit (all but the wall-clock `seconds`)
# that of a run that had the directory to itself.
#   scripts/trial_concurrency.sh [TRIALS] [STEPS]      default 20 trials of a 200-step run
# Half the trials start the second run at a random moment of the first half of the first's run; the
# other half start both at the same instant, where whichever locks first must win and the other
# be refused. Env: MIXGRAD (default build/mixgrad). Exit status 1 if any trial fails.
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-20}" steps="${2:-200}"
source scripts/trial_world.sh

ms() { date +%s%3N; }
trial_config "$W/ref" "$steps" 5 >"$W/ref.yaml"
# The data cache first, so that the timed run (and every trial) only trains.
"$M" tokenize "$W/ref.yaml" >"$W/tokenize.log" 2>&1 || { cat "$W/tokenize.log"; exit 1; }
t0=$(ms)
OMP_NUM_THREADS=1 "$M" train "$W/ref.yaml" >"$W/ref.log" 2>&1 || { cat "$W/ref.log"; exit 1; }
run_ms=$(($(ms) - t0))
metrics_columns "$W/ref/metrics.csv" >"$W/ref.cols"
"$M" eval --checkpoint "$W/ref/checkpoint.safetensors" >"$W/ref.eval" 2>&1
echo "reference: $steps steps, $run_ms ms; $(cat "$W/ref.eval")"

ok=0 failed=0 refused=0 sim=0
RANDOM=4242
for i in $(seq 1 "$trials"); do
  out="$W/t$i" cfg="$W/t$i.yaml"
  trial_config "$out" "$steps" 5 >"$cfg"
  if [ $((i % 2)) -eq 1 ]; then
    # Sequential: the second starts once the first holds the lock, at a random moment of its run.
    OMP_NUM_THREADS=1 "$M" train "$cfg" >"$W/t$i.a.log" 2>&1 &
    pa=$!
    until grep -qs "^pid $pa:" "$out/.lock"; do sleep 0.005; done
    sleep "$(awk -v d=$((RANDOM % (run_ms / 2 + 1))) 'BEGIN { printf "%.3f", d / 1000 }')"
    kill -0 "$pa" 2>/dev/null || { echo "trial $i: the first run ended before the second started: make STEPS larger"; exit 2; }
    set +e
    OMP_NUM_THREADS=1 "$M" train "$cfg" >"$W/t$i.b.log" 2>&1
    rb=$?
    wait "$pa"
    ra=$?
    set -e
    winner=a loser=b rw=$ra rl=$rb
  else
    # Simultaneous: both at once; exactly one may run.
    sim=$((sim + 1))
    OMP_NUM_THREADS=1 "$M" train "$cfg" >"$W/t$i.a.log" 2>&1 &
    pa=$!
    OMP_NUM_THREADS=1 "$M" train "$cfg" >"$W/t$i.b.log" 2>&1 &
    pb=$!
    set +e
    wait "$pa"
    ra=$?
    wait "$pb"
    rb=$?
    set -e
    if [ "$ra" -eq 0 ]; then winner=a loser=b rw=$ra rl=$rb; else winner=b loser=a rw=$rb rl=$ra; fi
  fi
  metrics_columns "$out/metrics.csv" >"$W/t$i.cols" 2>/dev/null || true
  "$M" eval --checkpoint "$out/checkpoint.safetensors" >"$W/t$i.eval" 2>&1 || true
  msg_ok=0
  # The refusal is the loser's last line (before it, at most a note that it waited for the data cache).
  tail -1 "$W/t$i.$loser.log" | grep -q "is in use by another run (pid" && msg_ok=1
  [ "$rl" -ne 0 ] && [ "$msg_ok" -eq 1 ] && refused=$((refused + 1))
  if [ "$rw" -eq 0 ] && [ "$rl" -ne 0 ] && [ "$msg_ok" -eq 1 ] && cmp -s "$W/ref.cols" "$W/t$i.cols" &&
    cmp -s "$W/ref.eval" "$W/t$i.eval"; then
    ok=$((ok + 1))
  else
    failed=$((failed + 1))
    echo "trial $i: FAILED (winner exit $rw, loser exit $rl)"
    head -3 "$W/t$i.$loser.log"
    diff "$W/ref.cols" "$W/t$i.cols" | head -5 || true
  fi
done
echo "concurrency trials: $trials ($((trials - sim)) with the second run started during the first, $sim started at the same instant)"
echo "  second run refused with the clear error: $refused/$trials; first run's files intact (exit 0, checkpoint evaluates as the reference, metrics bitwise): $ok/$trials"
echo "  example refusal: $(tail -1 "$W/t1.b.log")"
[ "$failed" -eq 0 ]
