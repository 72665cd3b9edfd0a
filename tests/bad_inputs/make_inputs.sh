#!/usr/bin/env bash
# Writes the inputs of the bad-input suite (tests/bad_inputs/cases.txt) into DIR, using only the
# built program and text made up here (no third-party text):
#   make_inputs.sh MIXGRAD DIR
# First a tiny valid world (corpus, config, tokenizer, token shards, a trained checkpoint), then
# one corrupted or mis-typed variant per case, each changing one thing.
set -euo pipefail
export LC_ALL=C
M="$1" D="$2"
mkdir -p "$D"
cd "$D"

# ---- a small valid world ------------------------------------------------------------------
awk 'BEGIN { split("the a little big red cat dog robot star tree ran saw found made happy sad sky garden book night", w, " ");
  s = 7; for (d = 0; d < 300; d++) { line = ""; n = 8 + d % 13;
    for (i = 0; i < n; i++) { s = (s * 1103515245 + 12345) % 2147483648; line = line (i ? " " : "") w[1 + int(s / 65536) % 20] }
    print line "."; print "<|endoftext|>" } }' >corpus.txt

base_config() {  # base_config OUT_DIR CACHE_DIR
  cat <<YAML
name: bad
out_dir: $1
model:
  kind: masked_mixer
  d_model: 16
  n_layers: 1
  n_ctx: 16
data:
  format: text
  path: $D/corpus.txt
  vocab_size: 300
  cache_dir: $2
  validation:
    mode: first
    count: 20
train:
  batch_size: 4
  steps: 2
  warmup_steps: 1
  eval_every: 2
  eval_batches: 1
  log_every: 1
  checkpoint_every: 2
YAML
}
base_config "$D/run" "$D/cache" >good.yaml
"$M" train good.yaml >train.log 2>&1 || { cat train.log; echo "make_inputs: training the valid run failed" >&2; exit 1; }
sed -e 's/vocab_size: 300/vocab_size: 320/' -e "s|out_dir: .*|out_dir: $D/run320|" good.yaml >good320.yaml
"$M" train good320.yaml >train320.log 2>&1 || { cat train320.log; echo "make_inputs: training the second run failed" >&2; exit 1; }
CK="$D/run/checkpoint.safetensors" TOK="$D/run/tokenizer.bpe"
CACHE=$(cd cache && ls -d */ | grep v300 | tr -d /)
CACHE320=$(cd cache && ls -d */ | grep v320 | tr -d /)

# ---- YAML configs: cfg NAME SED_EXPR... (base config, edited; out_dir is out/NAME) ---------
mkdir -p cfg
cfg() {
  local name="$1"
  shift
  local args=()
  for e in "$@"; do args+=(-e "$e"); done
  if [ ${#args[@]} -eq 0 ]; then args=(-e ''); fi
  base_config "$D/out/$name" "$D/cache" | sed "${args[@]}" >"cfg/$name.yaml"
}
# Valid configs with their own out_dir, for the command-line cases.
for n in fresh_steps_negative fresh_steps_zero fresh_stop_after; do cfg "$n"; done
cfg unknown_top '$a bogus: 1'
cfg unknown_model '/^model:/a\  bogus: 1'
cfg unknown_data '/^data:/a\  bogus: 1'
cfg unknown_train '/^train:/a\  bogus: 1'
cfg unknown_validation '/^  validation:/a\    bogus: 1'
cfg typo_lr '/^train:/a\  learning_rate: 0.1'
cfg typo_section '$a trian:\n  steps: 3'
cfg int_as_text 's/d_model: 16/d_model: sixteen/'
cfg int_as_float 's/n_layers: 1/n_layers: 1.5/'
cfg int_as_list 's/steps: 2/steps: [2, 3]/'
cfg int_as_map 's/batch_size: 4/batch_size: {a: 1}/'
cfg float_as_text '/^train:/a\  lr: fast'
cfg bool_as_text '/^model:/a\  tie_weights: maybe'
cfg section_as_scalar 's/^train:/train: 5\nignored:/'
cfg section_as_list 's/^model:/model:\n  - 1\nx:/'
cfg top_as_list 's/^name: bad/- name: bad/'
cfg steps_zero 's/steps: 2/steps: 0/'
cfg steps_negative 's/steps: 2/steps: -4/'
cfg batch_zero 's/batch_size: 4/batch_size: 0/'
cfg lr_zero '/^train:/a\  lr: 0'
cfg lr_negative '/^train:/a\  lr: -0.001'
cfg reduce_bucket_zero '/^train:/a\  reduce_bucket_mb: 0'
cfg warmup_past_steps 's/warmup_steps: 1/warmup_steps: 50/'
cfg eval_every_zero 's/eval_every: 2/eval_every: 0/'
cfg log_every_zero 's/log_every: 1/log_every: 0/'
cfg checkpoint_every_zero 's/checkpoint_every: 2/checkpoint_every: 0/'
cfg threads_negative '/^train:/a\  threads: -2'
cfg device_unknown '/^train:/a\  device: tpu'
cfg precision_unknown '/^train:/a\  precision: f16'
cfg decay_unknown '/^train:/a\  decay: exponential'
cfg kind_unknown 's/kind: masked_mixer/kind: lstm/'
cfg form_unknown '/^model:/a\  mixer_form: diagonal'
cfg format_unknown 's/format: text/format: csv/'
cfg mode_unknown 's/mode: first/mode: middle/'
cfg batching_unknown '/^data:/a\  batching: random'
cfg pad_side_unknown '/^data:/a\  pad_side: top'
cfg vocab_small 's/vocab_size: 300/vocab_size: 100/'
cfg vocab_large 's/vocab_size: 300/vocab_size: 70000/'
cfg vocab_mismatch '/^model:/a\  vocab_size: 512'
cfg fraction_large 's/mode: first/mode: hash/' 's/count: 20/fraction: 1.5/'
cfg fraction_negative 's/mode: first/mode: hash/' 's/count: 20/fraction: -0.1/'
cfg max_doc_bytes_zero '/^data:/a\  max_document_bytes: 0'
cfg max_documents_negative '/^data:/a\  max_documents: -1'
cfg d_model_zero 's/d_model: 16/d_model: 0/'
cfg d_model_negative 's/d_model: 16/d_model: -16/'
cfg n_layers_zero 's/n_layers: 1/n_layers: 0/'
cfg n_ctx_zero 's/n_ctx: 16/n_ctx: 0/'
cfg n_ctx_negative 's/n_ctx: 16/n_ctx: -8/'
cfg heads_indivisible 's/kind: masked_mixer/kind: llama/' '/^model:/a\  n_heads: 3'
cfg int_overflow 's/steps: 2/steps: 99999999999999999999999/'
cfg int32_overflow 's/n_layers: 1/n_layers: 4294967297/'
cfg layers_huge 's/n_layers: 1/n_layers: 1000000000/'
cfg d_model_huge 's/d_model: 16/d_model: 2000000000/'
cfg corpus_missing "s|path: .*corpus.txt|path: $D/no-such-corpus.txt|"
cfg corpus_is_dir "s|path: .*corpus.txt|path: $D/cfg|" 's/format: text/format: jsonl/'
cfg yaml_unclosed 's/^model:/model: {kind: llama/'
cfg yaml_tab 's/^  d_model: 16/\td_model: 16/'
cfg yaml_bad_indent 's/^  n_ctx: 16/     n_ctx: 16/'
cfg yaml_duplicate_key 's/steps: 2/steps: 2\n  steps: 3/'
cfg yaml_complex_key '$a ? [a, b]\n: 1'
cfg vocab_too_large 's/vocab_size: 300/vocab_size: 5000/'
cfg yaml_anchor_loop '$a x: *undefined_anchor'
printf '\xff\xfe\x00n\x00a\x00m\x00e' >cfg/binary.yaml
mkdir -p cfg/a_directory.yaml

# ---- safetensors checkpoints: ck/NAME.safetensors beside the run's tokenizer.bpe -------------
mkdir -p ck
cp "$TOK" ck/tokenizer.bpe
u64le() {  # 8 little-endian bytes of a (possibly negative = huge) 64-bit integer
  local n=$1 i
  for i in 0 1 2 3 4 5 6 7; do printf "\\x$(printf %02x $(((n >> (8 * i)) & 255)))"; done
}
hlen() { od -An -tu8 -N8 "$1" | tr -d ' '; }
header() { head -c $((8 + $(hlen "$1"))) "$1" | tail -c +9; }
data() { tail -c +$((9 + $(hlen "$1"))) "$1"; }
st_build() {  # st_build OUT HEADER DATA_FILE
  { u64le "${#2}"; printf '%s' "$2"; cat "$3"; } >"$1"
}
data "$CK" >ck.data
st_edit() {  # st_edit NAME SED_EXPR: the checkpoint with its header edited
  st_build "ck/$1.safetensors" "$(header "$CK" | sed -e "$2")" ck.data
}
: >ck/empty.safetensors
printf 'abcdefg' >ck/seven_bytes.safetensors
{ u64le -1; head -c 64 /dev/zero; } >ck/header_len_huge.safetensors
{ u64le 200000000; head -c 64 /dev/zero; } >ck/header_len_past_limit.safetensors
head -c 100 "$CK" >ck/truncated_header.safetensors
head -c $(($(stat -c %s "$CK") - 100)) "$CK" >ck/truncated_data.safetensors
{ cat "$CK"; printf 'trailing'; } >ck/trailing_bytes.safetensors
st_edit not_json 's/^{/x/'
st_edit json_array 's/^{\(.*\)}\( *\)$/[\1]\2/'
st_edit unknown_dtype '0,/"F32"/s//"F16"/'
st_edit dtype_number '0,/"F32"/s//32/'
st_edit shape_mismatch '0,/"shape":\[300,16\]/s//"shape":[300,15]/'
st_edit shape_negative '0,/"shape":\[300,16\]/s//"shape":[-300,16]/'
st_edit shape_huge '0,/"shape":\[300,16\]/s//"shape":[4294967296,4294967296,4294967296]/'
st_edit shape_too_many_dims '0,/"shape":\[300,16\]/s//"shape":[1,1,1,1,1,1,1,1,1,300,16]/'
st_edit offsets_reversed 's/"data_offsets":\[0,\([0-9]*\)\]/"data_offsets":[\1,0]/'
st_edit offsets_missing 's/,"data_offsets":\[0,[0-9]*\]//'
st_edit offset_float 's/"data_offsets":\[0,/"data_offsets":[0.0,/'
st_edit unknown_entry_key 's/"dtype":"F32"/"dtype":"F32","dtipe":"F32"/'
st_edit duplicate_name 's/"wte.weight"/"mixerblocks.0.patch_layernorm.weight"/'
st_edit metadata_not_object 's/"__metadata__":{/"__metadata__":[{/; s/},"wte.weight"/}],"wte.weight"/'
st_edit metadata_number 's/"step":"[0-9]*"/"step":2/'
st_edit no_config 's/"config":/"konfig":/'
st_edit config_not_yaml 's/"config":"/"config":"model: [\\n/'
st_edit config_bad_value 's/steps: 2/steps: -2/'
st_edit renamed_tensor 's/"wte.weight"/"wte.weights"/'
st_edit bad_utf8_name 's/"wte.weight"/"wte.\xff\xfeweight"/'
st_edit deep_nesting "s/\"__metadata__\"/\"zz\":$(printf '[%.0s' $(seq 100))$(printf ']%.0s' $(seq 100)),\"__metadata__\"/"
st_edit control_char 's/"wte.weight"/"wte\x01weight"/'
st_edit bad_escape 's/"wte.weight"/"wte\\qweight"/'
st_edit lone_surrogate 's/"wte.weight"/"wte\\ud800weight"/'
st_edit not_a_checkpoint 's/"format":"[^"]*"/"format":"something-else"/'
# A weights-only file that is a valid safetensors file but no model's checkpoint.
printf '\x00\x00\x80\x3f\x00\x00\x00\x40' >ck.two
meta=$(header "$CK" | grep -o '"__metadata__":{[^}]*}')
st_build ck/wrong_tensors.safetensors "{$meta,\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}" ck.two
st_build ck/plain_safetensors.safetensors '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}' ck.two
# The 320-token run's weights under the 300-token run's config: every shape disagrees.
meta400=$(header "$D/run320/checkpoint.safetensors" | sed -e 's/vocab_size: 320/vocab_size: 300/')
st_build ck/wrong_shapes.safetensors "$meta400" <(data "$D/run320/checkpoint.safetensors")
# A safetensors file whose bytes are fine but whose model is an autoencoder's: covered by config.
cp "$CK" ck/good.safetensors
mkdir -p ck/a_directory.safetensors

# ---- tokenizer files: tok/NAME/{checkpoint.safetensors,tokenizer.bpe} ------------------------
mkdir -p tok
tok_put() {  # tok_put NAME < tokenizer text
  mkdir -p "tok/$1"
  cp "$CK" "tok/$1/checkpoint.safetensors"
  cat >"tok/$1/tokenizer.bpe"
}
first_merge() {  # a sed script applying SED_EXPR to the first merge line only
  printf '/^[0-9][0-9]* [0-9][0-9]* /{%s\n:a\nn\nba\n}' "$1"
}
tok_edit() {  # tok_edit NAME SED_EXPR...
  local name="$1"
  shift
  local args=()
  for e in "$@"; do args+=(-e "$e"); done
  sed "${args[@]}" "$TOK" | tok_put "$name"
}
tok_put empty </dev/null
printf 'mixgrad-bpe 1\n' | tok_put header_only
head -c 300 "$TOK" | tok_put truncated
tok_edit wrong_magic '1s/mixgrad-bpe/gpt2-bpe/'
tok_edit version_2 '1s/ 1$/ 2/'
tok_edit version_text '1s/ 1$/ one/'
tok_edit vocab_mismatch 's/^vocab_size \(.*\)/vocab_size 299/'
tok_edit vocab_huge 's/^vocab_size \(.*\)/vocab_size 2147483647/'
tok_edit vocab_overflow 's/^vocab_size \(.*\)/vocab_size 99999999999999999999/'
tok_edit vocab_negative 's/^vocab_size \(.*\)/vocab_size -300/'
# Counts that add up (2^31 - 1 tokens) and special ids to match: the file ends long before.
tok_edit merges_huge 's/^vocab_size .*/vocab_size 2147483647/' 's/^merges .*/merges 2147483389/' \
  's/^special [0-9]* eos/special 2147483645 eos/' 's/^special [0-9]* pad/special 2147483646 pad/'
tok_edit merges_count_off 's/^merges \([0-9]*\)/merges 1\1/'
tok_edit specials_one 's/^specials 2/specials 1/'
tok_edit special_role 's/^special \([0-9]*\) eos/special \1 pad/'
tok_edit special_id 's/^special \([0-9]*\) eos/special 7 eos/'
tok_edit special_empty_bytes 's/^special \([0-9]*\) eos .*/special \1 eos /'
tok_edit special_duplicate 's/^special \([0-9]*\) pad .*/special \1 pad <|endoftext|>/'
tok_edit merge_bad_bytes "$(first_merge 's/^\([0-9]* [0-9]*\) .*/\1 zz/')"
tok_edit merge_forward_ref "$(first_merge 's/^[0-9]* [0-9]* /999 32 /')"
tok_edit merge_negative_id "$(first_merge 's/^[0-9]* /-1 /')"
tok_edit merge_bad_escape "$(first_merge 's/ [^ ]*$/ \\x4/')"
tok_edit merge_extra_field "$(first_merge 's/$/ extra/')"
tok_edit no_end '/^end$/d'
tok_edit after_end '$a more'
tok_edit nul_byte '2s/^/\x00/'
# A valid tokenizer of another run (320 tokens) beside the 300-token model.
tok_put other_run <"$D/run320/tokenizer.bpe"
mkdir -p tok/missing && cp "$CK" tok/missing/checkpoint.safetensors

# ---- token shards: shard/NAME.yaml whose cache holds the valid tokenizer and a bad shard ------
# (and the valid corpus.fingerprint: a cache without one would be rebuilt, not read)
mkdir -p shard
shard_put() {  # shard_put NAME < train shard bytes
  local c="$D/shard/$1/$CACHE"
  mkdir -p "$c"
  cp "cache/$CACHE/tokenizer.bpe" "cache/$CACHE/validation.mgtok" "cache/$CACHE/corpus.fingerprint" "$c/"
  cat >"$c/train.mgtok"
  base_config "$D/out/shard-$1" "$D/shard/$1" >"shard/$1.yaml"
}
S="cache/$CACHE/train.mgtok"
SZ=$(stat -c %s "$S")
patch() {  # patch NAME OFFSET BYTES(printf format): the good train shard with bytes overwritten
  local tmp="shard/$1.bin"
  cp "$S" "$tmp"
  printf "$3" | dd of="$tmp" bs=1 seek="$2" conv=notrunc status=none
  shard_put "$1" <"$tmp"
  rm "$tmp"
}
shard_put empty </dev/null
head -c 63 "$S" | shard_put short_header
head -c $((SZ - 8)) "$S" | shard_put truncated
{ cat "$S"; head -c 8 /dev/zero; } | shard_put trailing
patch wrong_magic 0 'MGTOK9\0\0'
patch version_2 8 '\x02'
patch vocab_zero 12 '\x00\x00\x00\x00'
patch vocab_huge 12 '\x00\x00\x01\x00'
patch docs_huge 16 '\xff\xff\xff\xff\xff\xff\xff\x7f'
patch tokens_huge 24 '\xff\xff\xff\xff\xff\xff\xff\xff'
patch tokens_off_by_one 24 "$(printf '\\x%02x' $(( $(od -An -tu1 -j24 -N1 "$S") ^ 1 )))"
patch fingerprint 32 '\x01\x02\x03\x04'
patch checksum 40 '\x55'
patch reserved 48 '\x01'
patch token_flip 64 '\xff\xff'
patch offsets_flip $((SZ - 9)) '\x7f'
# The other run's shard (another tokenizer: fingerprint mismatch).
shard_put other_tokenizer <"cache/$CACHE320/train.mgtok"
mkdir -p shard/validation_bad/"$CACHE"
cp "cache/$CACHE/tokenizer.bpe" "cache/$CACHE/train.mgtok" "cache/$CACHE/corpus.fingerprint" shard/validation_bad/"$CACHE"/
printf 'not a shard' >shard/validation_bad/"$CACHE"/validation.mgtok
base_config "$D/out/shard-validation_bad" "$D/shard/validation_bad" >shard/validation_bad.yaml
# A corrupt tokenizer in the data cache (read by tokenize/train, not only generate).
mkdir -p shard/cache_tokenizer/"$CACHE"
cp "cache/$CACHE/train.mgtok" "cache/$CACHE/validation.mgtok" "cache/$CACHE/corpus.fingerprint" shard/cache_tokenizer/"$CACHE"/
printf 'mixgrad-bpe 1\nvocab_size 300\n' >shard/cache_tokenizer/"$CACHE"/tokenizer.bpe
base_config "$D/out/shard-cache_tokenizer" "$D/shard/cache_tokenizer" >shard/cache_tokenizer.yaml

# A checkpoint whose config's data cache holds a corrupt shard (eval reads the validation shard).
mkdir -p shard-ckpt
cp "$TOK" shard-ckpt/
st_build shard-ckpt/checkpoint.safetensors "$(header "$CK" | sed -e "s|cache_dir: $D/cache|cache_dir: $D/shard/wrong_magic|")" ck.data
cp shard/wrong_magic/"$CACHE"/train.mgtok shard/wrong_magic/"$CACHE"/validation.mgtok

# ---- JSONL retrieval pairs: pairs/NAME.jsonl -------------------------------------------------
mkdir -p pairs
good_pair() { printf '{"id": "p%d", "query": "query %d", "document": "the little robot %d counted stars"}\n' "$1" "$1" "$1"; }
for i in $(seq 40); do good_pair "$i"; done >ok.jsonl
pairs() {  # pairs NAME LINE...: five valid pairs, then the given lines
  { for i in 1 2 3 4 5; do good_pair "$i"; done; for l in "${@:2}"; do printf '%s\n' "$l"; done; } >"pairs/$1.jsonl"
}
: >pairs/empty.jsonl
pairs not_json 'this is not json'
pairs not_object '["query", "document"]'
pairs string_line '"just a string"'
pairs missing_query '{"id": "x", "document": "text"}'
pairs missing_document '{"id": "x", "query": "text"}'
pairs number_query '{"id": "x", "query": 5, "document": "text"}'
pairs null_document '{"id": "x", "query": "q", "document": null}'
pairs empty_query '{"id": "x", "query": "", "document": "text"}'
pairs blank_query '{"id": "x", "query": "   ", "document": "text"}'
pairs repeated_id '{"id": "p1", "query": "another", "document": "another text"}'
pairs number_id '{"id": 7, "query": "q", "document": "d"}'
pairs blank_line ''
pairs trailing_comma '{"id": "x", "query": "q", "document": "d",}'
pairs single_quotes "{'id': 'x', 'query': 'q', 'document': 'd'}"
pairs unterminated '{"id": "x", "query": "q", "document": "d'
pairs two_objects '{"id": "x", "query": "q", "document": "d"} {"id": "y"}'
pairs nan '{"id": "x", "query": "q", "document": "d", "score": NaN}'
pairs deep_nesting "{\"id\": \"x\", \"query\": \"q\", \"document\": \"d\", \"n\": $(printf '[%.0s' $(seq 100000))$(printf ']%.0s' $(seq 100000))}"
pairs bad_escape '{"id": "x", "query": "q\q", "document": "d"}'
pairs lone_surrogate '{"id": "x", "query": "q\ud800", "document": "d"}'
pairs control_char "$(printf '{"id": "x", "query": "q\001", "document": "d"}')"
pairs invalid_utf8 "$(printf '{"id": "x", "query": "q\xff\xfe", "document": "d"}')"
pairs overlong_utf8 "$(printf '{"id": "x", "query": "q\xc0\xaf", "document": "d"}')"
mkdir -p pairs/a_directory.jsonl
