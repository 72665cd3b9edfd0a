#!/usr/bin/env bash
# Configures and builds mixgrad (Release) in ./build. The CUDA backend is built when nvcc is
# found (PATH, or the toolkit's usual place /usr/local/cuda); pass -DMG_CUDA=OFF to skip it.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CUDACXX:-}" ] && ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j "$(nproc)"
