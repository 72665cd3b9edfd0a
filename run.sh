#!/usr/bin/env bash
# The main job: install dependencies, the default corpus and the Reuters retrieval pairs, build,
# and run the quick reproduction (a masked mixer and a Llama-style transformer trained on the same
# data with the same budget, then the input-representation test and the retrieval comparison on
# both; writes runs/quick/report.md with loss curves, samples, tables and figures). Extra
# arguments go to `mixgrad reproduce` (e.g. --resume after an interruption, --out DIR).
set -euo pipefail
cd "$(dirname "$0")"
scripts/install_deps.sh --corpus
scripts/install_corpus.sh corpus reuters >/dev/null
scripts/build.sh
exec build/mixgrad reproduce --quick "$@"
