#!/usr/bin/env bash
# The whole test suite: install dependencies, build, run every suite with ctest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh
scripts/build.sh
cd build
OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}" ctest --output-on-failure -j "$(nproc)"
