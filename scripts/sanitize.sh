#!/usr/bin/env bash
# The whole ctest suite under AddressSanitizer + UndefinedBehaviorSanitizer (GCC, CUDA off): any
# out-of-bounds access, use after free, leak or undefined behaviour fails the test that hit it.
#   scripts/sanitize.sh [CTEST_ARGS...]     e.g. scripts/sanitize.sh -R test_safetensors
# Env: MG_SANITIZE_BUILD_DIR (default build-sanitize). The build is -O1 (as the sanitizers
# recommend, and quicker to compile); that also checks that no result depends on -O3.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${MG_SANITIZE_BUILD_DIR:-build-sanitize}"
scripts/install_deps.sh
mkdir -p "$build"
launcher=()  # ccache, where installed, makes a rebuild after small changes quick
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if ! { cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG" -DMG_SANITIZE=ON \
         -DMG_CUDA=OFF "${launcher[@]}" && cmake --build "$build" -j "$(nproc)"; } >"$build/sanitize-build.log" 2>&1; then
  grep -E 'error|Error' "$build/sanitize-build.log" | head -40
  echo "sanitize.sh: the build failed (log: $build/sanitize-build.log)" >&2
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
