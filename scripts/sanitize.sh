#!/usr/bin/env bash
# The whole ctest suite under AddressSanitizer + UndefinedBehaviorSanitizer (CUDA off): any
# out-of-bounds access, use after free, leak or undefined behaviour fails the test that hit it.
#   scripts/sanitize.sh [CTEST_ARGS...]     e.g. scripts/sanitize.sh -R test_safetensors
# Env: MG_SANITIZE_BUILD_DIR (default build-sanitize).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${MG_SANITIZE_BUILD_DIR:-build-sanitize}"
scripts/install_deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DMG_SANITIZE=ON -DMG_CUDA=OFF >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}" ctest --output-on-failure -j "$(nproc)" "$@"
