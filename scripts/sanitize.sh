#!/usr/bin/env bash
# The whole ctest suite under AddressSanitizer + UndefinedBehaviorSanitizer: any out-of-bounds
# access, use after free, leak or undefined behaviour fails the test that hit it.
#   scripts/sanitize.sh [CTEST_ARGS...]     e.g. scripts/sanitize.sh -R test_safetensors
# Env: MG_CHECK_BUILD_DIR (default build-check). The build is the one scripts/fuzz.sh uses (clang,
# CUDA off, the library also instrumented for libFuzzer), so CI compiles the checking build once
# for both. It is -O1, as the sanitizers recommend; that also checks that no result depends on -O3.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${MG_CHECK_BUILD_DIR:-build-check}"
scripts/install_deps.sh --fuzz
scripts/configure_check_build.sh "$build"
if ! cmake --build "$build" -j "$(nproc)" >"$build/check-build.log" 2>&1; then
  grep -E 'error|Error' "$build/check-build.log" | head -40
  echo "sanitize.sh: the build failed (log: $build/check-build.log)" >&2
  exit 2
fi
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/scripts/lsan_suppressions.txt}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
cd "$build"
if [ $# -gt 0 ]; then
  exec ctest --output-on-failure -j "$(nproc)" "$@"
fi
# test_distributed's MPI ranks need full malloc stacks for the suppressions to recognise Open MPI's
# allocations; everywhere else the fast unwinder keeps the suite quick.
status=0
ctest --output-on-failure -j "$(nproc)" -E '^test_distributed$' || status=$?
ASAN_OPTIONS="$ASAN_OPTIONS:fast_unwind_on_malloc=0" ctest --output-on-failure -R '^test_distributed$' || status=$?
exit "$status"
