#!/usr/bin/env bash
# The main job: install dependencies, build, and run mixgrad's end-to-end example.
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh
scripts/build.sh
exec build/mixgrad example "$@"
