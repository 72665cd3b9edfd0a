#!/usr/bin/env bash
# The whole ctest suite under AddressSanitizer + UndefinedBehaviorSanitizer (CUDA off): any
# out-of-bounds access, use after free, leak or undefined behaviour fails the test that hit it.
#   scripts/sanitize.sh [CTEST_ARGS...]     e.g. scripts/sanitize.sh -R test_safetensors
# Env: MG_SANITIZE_BUILD_DIR (default build-sanitize). MG_SANITIZE_CLANG=1 builds with clang and
# adds the fuzz targets (MG_FUZZ=ON), so that scripts/fuzz.sh with the same build dir reuses the
# build: CI compiles the library once for both checking stages.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${MG_SANITIZE_BUILD_DIR:-build-sanitize}"
args=(-DCMAKE_BUILD_TYPE=Release -DMG_SANITIZE=ON -DMG_CUDA=OFF)
if [ -n "${MG_SANITIZE_CLANG:-}" ]; then
  scripts/install_deps.sh --fuzz
  export CC=clang CXX=clang++
  args+=(-DMG_FUZZ=ON)
else
  scripts/install_deps.sh
fi
cmake -S . -B "$build" "${args[@]}" >/dev/null
cmake --build "$build" -j "$(nproc)" >"$build/sanitize-build.log" 2>&1 || {
  grep -E 'error|Error' "$build/sanitize-build.log" | head -40
  echo "sanitize.sh: the build failed (log: $build/sanitize-build.log)" >&2
  exit 2
}
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
