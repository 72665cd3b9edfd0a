#!/usr/bin/env bash
# Fuzzes every reader of untrusted files with libFuzzer (clang, ASan + UBSan): builds the targets
# in fuzz/, writes their seed corpora with the project's own writers, runs each target for the
# given time and prints its executions and crashes. Exit status 1 when any target found a crash,
# hang, leak or broken guarantee (the reproducer is in the artifacts folder it names).
#   scripts/fuzz.sh [SECONDS] [TARGET...]      default 60 s per target, every target in fuzz/
# Env: MG_CHECK_BUILD_DIR (default build-check, shared with scripts/sanitize.sh). The corpus each
# target grows is kept in <build>/fuzz-corpus/<target>, so later runs start where earlier ones stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
[ $# -gt 0 ] && shift
case "$secs" in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$secs'" >&2; exit 2 ;; esac
build="${MG_CHECK_BUILD_DIR:-build-check}"

scripts/install_deps.sh --fuzz
scripts/configure_check_build.sh "$build"
if ! cmake --build "$build" -j "$(nproc)" --target fuzz_all >"$build/fuzz-build.log" 2>&1; then
  grep -E 'error|Error' "$build/fuzz-build.log" | head -40
  echo "fuzz.sh: building the fuzz targets failed (log: $build/fuzz-build.log)" >&2
  exit 2
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
seeds="$build/fuzz-seeds"
rm -rf "$seeds"
"$build/fuzz/mg_fuzz_seeds" "$seeds" "$PWD"

failed=0
printf '%-22s %12s %8s  %s\n' target executions crashes artifacts
for t in "${targets[@]}"; do
  exe="$build/fuzz/$t"
  [ -x "$exe" ] || { echo "fuzz.sh: no target '$t' (have: fuzz/fuzz_*.cpp)" >&2; exit 2; }
  corpus="$build/fuzz-corpus/$t" art="$build/fuzz-artifacts/$t"
  mkdir -p "$corpus" "$art" "$seeds/$t"
  log="$build/fuzz-$t.log"
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  # One thread: the kernels' OpenMP pools would only add noise to a single-input run.
  set +e
  OMP_NUM_THREADS=1 "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$art/" "${dict[@]}" "$corpus" "$seeds/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}' || true)
  crashes=$(find "$art" -type f | wc -l)
  if [ "$rc" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi  # died without an artifact
  printf '%-22s %12s %8s  %s\n' "$t" "${execs:-?}" "$crashes" "$([ "$crashes" -gt 0 ] && echo "$art (log: $log)")"
  [ "$crashes" -gt 0 ] && failed=1
done
exit "$failed"
