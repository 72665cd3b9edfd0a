#!/usr/bin/env bash
# Installs the Debian packages mixgrad builds against. Idempotent: installs only what is missing.
#   scripts/install_deps.sh [--corpus] [--fuzz]
#     --corpus: also npm, which fetches the default corpus
#     --fuzz:   also clang, its sanitizer/libFuzzer runtimes and OpenMP (scripts/fuzz.sh)
set -euo pipefail
# openmpi: data-parallel training (optional for a build; installed so test_distributed runs).
pkgs=(cmake g++ make doctest-dev libyaml-cpp-dev libopenblas-dev libstb-dev openmpi-bin libopenmpi-dev)
for arg in "$@"; do
  case "$arg" in
    --corpus) command -v npm >/dev/null || pkgs+=(npm) ;;
    --fuzz) pkgs+=(clang libclang-rt-14-dev libomp-dev) ;;
    *) echo "install_deps.sh: unknown argument '$arg' (expected --corpus or --fuzz)" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
