#!/usr/bin/env bash
# Configures the checking build that scripts/sanitize.sh and scripts/fuzz.sh share: clang, CUDA off,
# ASan + UBSan over everything and the library instrumented for libFuzzer (MG_FUZZ=ON), -O1.
# Configuring an existing build again with the same settings changes nothing, so the second
# script reuses the first one's objects.
#   scripts/configure_check_build.sh BUILD_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
build="$1"
mkdir -p "$build"
launcher=()  # ccache, where installed, makes a rebuild after small changes quick
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
# Instrumented builds print many clang notes about loops it could not vectorise: kept in a log.
if ! CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS_RELEASE=-O1 -DNDEBUG" \
       -DMG_FUZZ=ON -DMG_CUDA=OFF "${launcher[@]}" >"$build/configure.log" 2>&1; then
  tail -30 "$build/configure.log"
  echo "configure_check_build.sh: configuring $build failed (log: $build/configure.log)" >&2
  exit 2
fi
