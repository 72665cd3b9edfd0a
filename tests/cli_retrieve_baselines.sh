#!/usr/bin/env bash
# `retrieve eval` scores both classical baselines (TF-IDF and BM25) on the same pools unless told
# not to, and refuses to run with nothing to score.   cli_retrieve_baselines.sh MIXGRAD
set -euo pipefail
M="$1"
d="$(mktemp -d "${TMPDIR:-/tmp}/mg-retrieve-baselines.XXXXXX")"
trap 'rm -rf "$d"' EXIT
cat >"$d/pairs.jsonl" <<'PAIRS'
{"query":"the cat sat on the mat","document":"a cat was sitting on a mat in the sun"}
{"query":"stock prices fell sharply","document":"markets dropped as shares of banks fell"}
{"query":"rain in spain","document":"the rain in spain falls mainly on the plain"}
{"query":"python programming language","document":"python is a language for programming computers"}
PAIRS
fail() { echo "cli_retrieve_baselines: $*" >&2; exit 1; }
run() { OMP_NUM_THREADS=1 "$M" retrieve eval --pairs "$d/pairs.jsonl" --test-fraction 1 --pools 2,4 --tfidf-only "$@" 2>&1; }
out="$(run)"
grep -qE '^tfidf +1\.0000 +1\.0000' <<<"$out" || fail "no tfidf row with top1 1.0 in: $out"
grep -qE '^bm25 +1\.0000 +1\.0000' <<<"$out" || fail "no bm25 row with top1 1.0 in: $out"
out="$(run --no-bm25)"
grep -q '^tfidf' <<<"$out" || fail "--no-bm25 dropped tfidf: $out"
! grep -q '^bm25' <<<"$out" || fail "--no-bm25 kept bm25: $out"
out="$(run --no-tfidf)"
grep -q '^bm25' <<<"$out" && ! grep -q '^tfidf' <<<"$out" || fail "--no-tfidf: $out"
if out="$(run --no-tfidf --no-bm25)"; then fail "nothing to score was accepted: $out"; fi
grep -q "needs a model" <<<"$out" || fail "unclear error: $out"
echo "cli_retrieve_baselines: passed"
