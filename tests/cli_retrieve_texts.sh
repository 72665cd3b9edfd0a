#!/usr/bin/env bash
# `retrieve texts` writes one part of a pair split as a jsonl corpus: the training split's texts
# never include a test pair's document (the pretraining-data ablation depends on it), the parts
# add up to the whole set, and bad requests are refused without a file.   cli_retrieve_texts.sh MIXGRAD
set -euo pipefail
M="$1"
d="$(mktemp -d "${TMPDIR:-/tmp}/mg-retrieve-texts.XXXXXX")"
trap 'rm -rf "$d"' EXIT
fail() { echo "cli_retrieve_texts: $*" >&2; exit 1; }
for i in $(seq 1 60); do
  printf '{"id":"p%d","query":"headline number %d","document":"article %d says that %d things happened"}\n' \
    "$i" "$i" "$i" "$i"
done >"$d/pairs.jsonl"
# One article under 20 headlines: some of them fall in each part of the split.
for i in $(seq 1 20); do
  printf '{"id":"s%d","query":"shared headline %d","document":"the same article filed twenty times"}\n' "$i" "$i"
done >>"$d/pairs.jsonl"
texts() { "$M" retrieve texts --pairs "$d/pairs.jsonl" --test-fraction 0.25 "$@" 2>&1; }
texts --split train --side documents --out "$d/train.jsonl" >/dev/null || fail "train export failed"
texts --split test --side documents --out "$d/test.jsonl" >/dev/null || fail "test export failed"
texts --split train --side both --out "$d/sub/both.jsonl" >/dev/null || fail "both export failed"
texts --split all --side queries --out "$d/all_q.jsonl" >/dev/null || fail "all export failed"
n_train=$(wc -l <"$d/train.jsonl"); n_test=$(wc -l <"$d/test.jsonl")
[ "$n_test" -gt 0 ] && [ "$n_train" -gt 0 ] || fail "an empty part: train $n_train, test $n_test"
grep -qxF '{"text":"the same article filed twenty times"}' "$d/test.jsonl" ||
  fail "the shared article is in no test pair: the check below would be vacuous"
# No test document in the training texts (whole lines compared), the shared article included.
if grep -qxFf "$d/test.jsonl" "$d/train.jsonl"; then fail "a test document is in the training texts"; fi
# Every other pair's document is in exactly one part.
[ $(( $(grep -vc 'twenty times' "$d/train.jsonl") + $(grep -vc 'twenty times' "$d/test.jsonl") )) -eq 60 ] ||
  fail "the 60 distinct documents are not split between train and test"
# Every line is one {"text": ...} object, the jsonl corpus format's default field.
! grep -qv '^{"text":"article [0-9]* says that [0-9]* things happened"}$' "$d/train.jsonl" || fail "bad lines in train"
# --side both: a query then a document per training pair (less the shared article's documents).
n_pairs_train=$(grep -c '"text":"headline number\|"text":"shared headline' "$d/sub/both.jsonl")
[ "$(wc -l <"$d/sub/both.jsonl")" -eq $((n_pairs_train + n_train)) ] || fail "--side both: line count"
[ "$(head -1 "$d/sub/both.jsonl" | grep -c '"headline number')" -eq 1 ] || fail "--side both: query not first"
[ "$(wc -l <"$d/all_q.jsonl")" -eq 80 ] || fail "--split all --side queries: not 80 lines"
# Refusals: no --split (its default would be the test texts), a bad side, no --out.
if out="$(texts --side documents --out "$d/x.jsonl")"; then fail "no --split was accepted: $out"; fi
grep -q -- "--split train|test|all is required" <<<"$out" || fail "unclear error: $out"
if out="$(texts --split train --side articles --out "$d/x.jsonl")"; then fail "--side articles was accepted"; fi
grep -q "expected queries, documents or both" <<<"$out" || fail "unclear error: $out"
if out="$(texts --split train)"; then fail "no --out was accepted"; fi
grep -q -- "--out FILE.jsonl is required" <<<"$out" || fail "unclear error: $out"
[ ! -e "$d/x.jsonl" ] || fail "a refused request left a file"
echo "cli_retrieve_texts: passed"
