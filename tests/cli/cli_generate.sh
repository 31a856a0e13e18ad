#!/usr/bin/env bash
# End-to-end checks of `illada generate`, `score` and `eval` on the bundled fixtures,
# including the errors a user sees. Usage: cli_generate.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
model=$src/tests/fixtures/tiny_gqa
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
json_get() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# generate: JSON keys, lengths, nfe
out=$("$bin" generate --model "$model" --prompt-ids 1,2,3 --gen-length 16 --block-length 8 --steps 8 --dtype f32 --format json)
[ "$(echo "$out" | json_get "len(j['ids'])")" = 16 ] || fail "generate ids: $out"
[ "$(echo "$out" | json_get "j['nfe']")" = 8 ] || fail "generate nfe: $out"
# same seed, same output at temperature > 0; batch of two prompts
a=$("$bin" generate --model "$model" --prompt-ids 1,2,3 --gen-length 8 --block-length 8 --steps 8 --temperature 1 --seed 5 --format json | json_get "j['ids']")
b=$("$bin" generate --model "$model" --prompt-ids 1,2,3 --gen-length 8 --block-length 8 --steps 8 --temperature 1 --seed 5 --format json | json_get "j['ids']")
[ "$a" = "$b" ] || fail "seeded generation differs: $a vs $b"
n=$("$bin" generate --model "$model" --prompt-ids 1,2 --prompt-ids 3,4,6 --gen-length 8 --block-length 4 --steps 4 --format json | json_get "len(j['results'])")
[ "$n" = 2 ] || fail "batch"
# fast decoders run and report fewer passes
t=$("$bin" generate --model "$model" --prompt-ids 1,2,3 --gen-length 32 --block-length 8 --steps 32 --threshold 0.0 --cache dual --format json | json_get "j['nfe']")
[ "$t" = 4 ] || fail "threshold 0 + dual cache should take one pass per block, took $t"

# bad input: clear errors, exit code 1
expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1; shift
  if "$bin" "$@" >"$tmp/out" 2>"$tmp/err"; then fail "accepted: $*"; fi
  grep -q -- "$pattern" "$tmp/err" || fail "message for '$*': $(cat "$tmp/err")"
}
expect_error "multiple of --block-length" generate --model "$model" --prompt-ids 1 --gen-length 10 --block-length 4
expect_error "max_sequence_length" generate --model "$model" --prompt-ids 1 --gen-length 512 --block-length 32 --steps 16
expect_error "give --prompt TEXT or --prompt-ids" generate --model "$model"
expect_error "not a token id" generate --model "$model" --prompt-ids 1,,2
expect_error "tokenizer.json" generate --model "$model" --prompt "hello"
expect_error "--steps (3)" generate --model "$model" --prompt-ids 1 --gen-length 8 --block-length 4 --steps 3
expect_error "cannot be combined" generate --model "$model" --prompt-ids 1 --gen-length 8 --block-length 4 --steps 4 --cfg-scale 1 --cache prefix
expect_error "The following argument was not expected" generate --model "$model" --prompt-ids 1 --no-such-flag

# score: JSON scores, one per choice
s=$("$bin" score --model "$model" --prompt-ids 1,2,3 --choice-ids "4,6;7;8,9" --format json | json_get "len(j['scores'])")
[ "$s" = 3 ] || fail "score"
"$bin" score --model "$model" --prompt-ids 1,2,3 --choice-ids "4,6;7" --method likelihood --mc-num 8 --batch-size 4 --format json >/dev/null
echo "cli_generate: all checks passed"
