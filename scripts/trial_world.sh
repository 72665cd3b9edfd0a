# Sourced by scripts/trial_*.sh: a tiny, made-up training world in "$W" (a corpus, a config
# writer) so that a whole run takes about a second and its checkpoint is written often.
#   trial_config OUT_DIR STEPS CHECKPOINT_EVERY   prints the run config
export LC_ALL=C
# Defaults to ./build/mixgrad (what scripts/build.sh makes); MIXGRAD=... picks another binary.
M="$(realpath "${MIXGRAD:-build/mixgrad}")"
[ -x "$M" ] || { echo "$0: no program at $M (build it, or set MIXGRAD)" >&2; exit 2; }
W="$(mktemp -d "${TMPDIR:-/tmp}/mg_trial.XXXXXX")"
trap 'rm -rf "$W"' EXIT
awk 'BEGIN { split("the a little big red cat dog robot star tree ran saw found made happy sad sky garden book night", w, " ");
  s = 7; for (d = 0; d < 300; d++) { line = ""; n = 8 + d % 13;
    for (i = 0; i < n; i++) { s = (s * 1103515245 + 12345) % 2147483648; line = line (i ? " " : "") w[1 + int(s / 65536) % 20] }
    print line "."; print "<|endoftext|>" } }' >"$W/corpus.txt"

trial_config() {
  cat <<YAML
name: trial
out_dir: $1
model:
  kind: masked_mixer
  d_model: 32
  n_layers: 2
  n_ctx: 32
data:
  format: text
  path: $W/corpus.txt
  vocab_size: 300
  cache_dir: $W/cache
  validation:
    mode: first
    count: 20
train:
  batch_size: 4
  steps: $2
  warmup_steps: 2
  eval_every: 5
  eval_batches: 2
  log_every: 1
  checkpoint_every: $3
  threads: 1
YAML
}

# The columns of metrics.csv that a resumed run must reproduce bit for bit: all but `seconds`
# (wall-clock time), in the file's own text (shortest round-trip decimals).
metrics_columns() {
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i != "seconds") keep[i] = 1 }
           { out = ""; for (i = 1; i <= NF; i++) if (keep[i]) out = out (out == "" ? "" : ",") $i; print out }' "$1"
}
