#!/usr/bin/env bash
# kill -9 at random moments, then --resume to the end: the final checkpoint's losses and every
# metrics.csv column but the wall-clock `seconds` must be bit for bit those of an uninterrupted
# run. The checkpoint is written every step, so many kills land inside a checkpoint write (the
# script counts the trials that left a temporary checkpoint file behind: the kill hit a write).
#   scripts/trial_kill9.sh [TRIALS] [STEPS]      default 20 trials of a 40-step run
# Env: MIXGRAD (default build/mixgrad). Exit status 1 if any trial differs.
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-20}" steps="${2:-40}"
source scripts/trial_world.sh

ms() { date +%s%3N; }
# Reference: one uninterrupted run (timed, so the kills spread over a whole run).
trial_config "$W/ref" "$steps" 1 >"$W/ref.yaml"
# The data cache first, so that the timed run (and every trial) only trains.
"$M" tokenize "$W/ref.yaml" >"$W/tokenize.log" 2>&1 || { cat "$W/tokenize.log"; exit 1; }
t0=$(ms)
OMP_NUM_THREADS=1 "$M" train "$W/ref.yaml" >"$W/ref.log" 2>&1 || { cat "$W/ref.log"; exit 1; }
run_ms=$(($(ms) - t0))
metrics_columns "$W/ref/metrics.csv" >"$W/ref.cols"
"$M" eval --checkpoint "$W/ref/checkpoint.safetensors" >"$W/ref.eval" 2>&1
ref_rows=$(($(wc -l <"$W/ref.cols") - 1))
echo "reference: $steps steps, checkpoint every step, $run_ms ms; $ref_rows metrics rows; $(cat "$W/ref.eval")"

same=0 differ=0 finished=0 in_write=0 before_first=0 resumes=0 cleaned=0
RANDOM=12345  # the same kill moments on every run of the script
for i in $(seq 1 "$trials"); do
  out="$W/t$i" cfg="$W/t$i.yaml"
  trial_config "$out" "$steps" 1 >"$cfg"
  # A random moment of the run: startup (data, model), steps and checkpoint writes.
  delay_ms=$((1 + (RANDOM * 32768 + RANDOM) % run_ms))
  OMP_NUM_THREADS=1 "$M" train "$cfg" >"$W/t$i.log" 2>&1 &
  pid=$!
  sleep "$(awk -v d="$delay_ms" 'BEGIN { printf "%.3f", d / 1000 }')"
  kill -9 "$pid" 2>/dev/null || true
  rc=0
  wait "$pid" 2>/dev/null || rc=$?
  [ "$rc" -eq 137 ] || finished=$((finished + 1))  # the run was over before the kill
  ls "$out" 2>/dev/null | grep -q '^checkpoint\.safetensors\.tmp\.' && in_write=$((in_write + 1))
  # Resume until the run is complete (a kill before the first checkpoint means a fresh start).
  for attempt in 1 2 3; do
    if [ -f "$out/checkpoint.safetensors" ]; then
      resumes=$((resumes + 1))
      OMP_NUM_THREADS=1 "$M" train "$cfg" --resume >"$W/t$i.resume.log" 2>&1 && break
    else
      before_first=$((before_first + 1))
      OMP_NUM_THREADS=1 "$M" train "$cfg" >"$W/t$i.resume.log" 2>&1 && break
    fi
    echo "trial $i: attempt $attempt failed:"; tail -3 "$W/t$i.resume.log"
  done
  grep -q 'temporary file of an interrupted write' "$W/t$i.resume.log" && cleaned=$((cleaned + 1))
  metrics_columns "$out/metrics.csv" >"$W/t$i.cols" 2>/dev/null || true
  "$M" eval --checkpoint "$out/checkpoint.safetensors" >"$W/t$i.eval" 2>&1 || true
  leftovers=$(ls "$out" | grep -c '\.tmp\.' || true)
  if cmp -s "$W/ref.cols" "$W/t$i.cols" && cmp -s "$W/ref.eval" "$W/t$i.eval" && [ "$leftovers" -eq 0 ]; then
    same=$((same + 1))
  else
    differ=$((differ + 1))
    echo "trial $i (killed at $delay_ms ms): DIFFERS from the uninterrupted run ($leftovers temporary files left)"
    diff "$W/ref.cols" "$W/t$i.cols" | head -5 || true
    diff "$W/ref.eval" "$W/t$i.eval" | head -3 || true
  fi
done
echo "kill -9 trials: $trials; bitwise identical to the uninterrupted run: $same; different: $differ"
echo "  killed inside a checkpoint write: $in_write; killed before the first checkpoint (fresh restart): $before_first;" \
  "resumed from a checkpoint: $resumes; stale temporary files removed on resume: $cleaned;" \
  "run already complete at the kill: $finished"
[ "$differ" -eq 0 ]
