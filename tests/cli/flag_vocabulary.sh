#!/usr/bin/env bash
# One flag vocabulary across commands (docs/cli.md): the same name means the same thing, old
# spellings still work as aliases, score takes --chat and eval --temperature, and every numeric
# flag goes through one validated parser (type, finiteness, range) whose error names the flag.
# Usage: flag_vocabulary.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
model=$src/tests/fixtures/tiny_gqa
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "flag_vocabulary: $*" >&2; exit 1; }
cd "$tmp"

# A text model: a tokenizer trained here and a random model over its vocabulary.
source "$src/tests/cli/lib/text_model.sh"
text_model "$bin" m
cp m/text.txt text.txt
cp m/model_config.json config.json

# Aliases give what the documented name gives.
[ "$("$bin" tokenize --tokenizer m --text "The cat")" = "$("$bin" tokenize --tokenizer m --prompt "The cat")" ] ||
  fail "tokenize --text differs from --prompt"
"$bin" logits --model "$model" --ids 1,2,3 --out a.f32 >/dev/null
"$bin" logits --model "$model" --prompt-ids 1,2,3 --out b.f32 >/dev/null
cmp -s a.f32 b.f32 || fail "logits --ids differs from --prompt-ids"
s1=$("$bin" score --model "$model" --prompt-ids 1,2 --choice-ids "3;4,6" --method likelihood --mc-num 8 --batch-size 4 --format json)
s2=$("$bin" score --model "$model" --prompt-ids 1,2 --choice-ids "3;4,6" --method likelihood --mc-num 8 --mc-batch-size 4 --format json)
[ "$s1" = "$s2" ] || fail "score --batch-size differs from --mc-batch-size: $s1 vs $s2"
"$bin" tokenizer train --input text.txt --vocab-size 300 --out t2 --no-progress >/dev/null || fail "--no-progress alias"
grep -q -- "--quiet,--no-progress" <<<"$("$bin" demo --help)" || fail "demo lacks --quiet"
grep -q -- "--quiet,--no-progress" <<<"$("$bin" train --help)" || fail "train lacks --quiet"

# score --chat: the prompt wrapped in the chat template (scores differ from the plain prompt).
plain=$("$bin" score --model m --prompt "Where is the cat?" --choices "on the mat" "in the park" --format json)
chat=$("$bin" score --model m --prompt "Where is the cat?" --choices "on the mat" "in the park" --chat --format json)
[ "$plain" != "$chat" ] || fail "score --chat had no effect"
# eval --temperature: a generation task sampled at temperature 1 differs across seeds.
printf '{"prompt": "The cat", "reference": "sat"}\n' > gen.jsonl
for seed in 1 2 3; do
  "$bin" eval --model m --task gen.jsonl --temperature 1 --seed $seed --gen-length 16 --out "g$seed.jsonl" --quiet >/dev/null
done
python3 - <<'PY' || fail "eval --temperature did not sample"
import json
outs = {json.loads(open(f"g{s}.jsonl").readline())["generated"] for s in (1, 2, 3)}
assert len(outs) > 1, outs
PY
# eval takes the same length flags as generate: --max-length with --variable-length.
"$bin" eval --model m --task gen.jsonl --variable-length --max-length 16 --block-length 8 --quiet >/dev/null ||
  fail "eval --max-length"

# Every numeric flag: junk, NaN, infinity and out-of-range values are refused, naming the flag.
expect_flag_error() {  # expect_flag_error FLAG VALUE COMMAND...
  local flag=$1 value=$2; shift 2
  if "$@" "$flag" "$value" >out 2>err; then fail "accepted $flag $value: $*"; fi
  grep -q -- "$flag" err || fail "the message for $flag $value does not name the flag: $(cat err)"
  grep -q "Run with --help\|illada: error" err || fail "unclear message for $flag $value: $(cat err)"
}
gen=("$bin" generate --model "$model" --prompt-ids 1,2)
for v in nan inf -1 abc 1e400 ""; do
  expect_flag_error --temperature "$v" "${gen[@]}"
  expect_flag_error --cfg-scale "$v" "${gen[@]}"
done
for v in 0 -5 1.5 abc 99999999999999999999 2000000; do
  expect_flag_error --gen-length "$v" "${gen[@]}"
  expect_flag_error --steps "$v" "${gen[@]}"
  expect_flag_error --block-length "$v" "${gen[@]}"
done
expect_flag_error --threshold 1.5 "${gen[@]}"
expect_flag_error --factor 0 "${gen[@]}"
expect_flag_error --seed -1 "${gen[@]}"
expect_flag_error --threads 0 "${gen[@]}"
expect_flag_error --remasking nope "${gen[@]}"
sc=("$bin" score --model "$model" --prompt-ids 1,2 --choice-ids "3;4" --method likelihood)
expect_flag_error --mc-num 0 "${sc[@]}"
expect_flag_error --mc-num 2000000000 "${sc[@]}"
expect_flag_error --mc-batch-size 0 "${sc[@]}"
if "${sc[@]}" --mc-num 12 --mc-batch-size 8 >out 2>err; then fail "--mc-num 12 with --mc-batch-size 8 accepted"; fi
grep -q -- "--mc-num (12) must be a multiple of --mc-batch-size (8)" err || fail "message: $(cat err)"
# --mc-num alone picks a batch size that divides it (before: blamed an unset --batch-size).
"${sc[@]}" --mc-num 20 --format json >/dev/null || fail "--mc-num 20 alone"
tr_=("$bin" train --model-config config.json --tokenizer m --data nowhere --out run --seq-len 32 --batch-size 2 --steps 2)
for v in nan 0 -0.5 inf; do expect_flag_error --lr "$v" "${tr_[@]}"; done
expect_flag_error --epochs 0 "${tr_[@]}"
expect_flag_error --split-prob 2 "${tr_[@]}"
expect_flag_error --beta2 1 "${tr_[@]}"
expect_flag_error --seq-len 1 "${tr_[@]}"
echo "flag_vocabulary: ok"
