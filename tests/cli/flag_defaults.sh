#!/usr/bin/env bash
# Defaults that follow from the flags given, and every default in --help.
#  - generate --gen-length 96 runs (steps and block length follow the length; before, it failed
#    on a --steps 128 the user never typed); --gen-length 64 takes 64 steps (before: silently
#    cut to fewer); --block-length 8 alone gives 128 tokens in 16 blocks, one token per step;
#    lengths that do not divide name the flags the user gave.
#  - a long prompt shortens the default answer to what fits the model's context, and an
#    explicit length that does not fit is an error naming the flag.
#  - every option that takes a value shows its default (or REQUIRED) and numeric ones their
#    range, in the --help of every subcommand.
# Usage: flag_defaults.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
model=$src/tests/fixtures/tiny_gqa
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "flag_defaults: $*" >&2; exit 1; }
json_get() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

gen() { "$bin" generate --model "$model" --prompt-ids 1,2,3 --dtype f32 --format json "$@"; }
out=$(gen --gen-length 96 2>"$tmp/err") || fail "--gen-length 96 alone failed: $(cat "$tmp/err")"
[ "$(echo "$out" | json_get "len(j['ids']), j['nfe']")" = "96 96" ] || fail "--gen-length 96: $out"
out=$(gen --gen-length 64)
[ "$(echo "$out" | json_get "j['nfe']")" = 64 ] || fail "--gen-length 64 should take 64 steps: $out"
out=$(gen --block-length 8)
[ "$(echo "$out" | json_get "len(j['ids']), j['nfe']")" = "128 128" ] || fail "--block-length 8: $out"
out=$(gen --gen-length 40)  # 32 does not divide 40: one block of 40
[ "$(echo "$out" | json_get "len(j['ids']), j['nfe']")" = "40 40" ] || fail "--gen-length 40: $out"
out=$(gen --variable-length --max-length 64 --block-length 16)
[ "$(echo "$out" | json_get "j['nfe'] <= 64")" = True ] || fail "variable length default steps: $out"
if gen --gen-length 40 --block-length 16 2>"$tmp/err" >/dev/null; then fail "40 tokens in blocks of 16 accepted"; fi
grep -q -- "--gen-length (40) must be a multiple of --block-length (16)" "$tmp/err" || fail "message: $(cat "$tmp/err")"
if gen --max-length 64 2>"$tmp/err" >/dev/null; then fail "--max-length without --variable-length accepted"; fi
grep -q -- "--max-length applies to --variable-length" "$tmp/err" || fail "message: $(cat "$tmp/err")"

# tiny_gqa's context is 256 tokens: a 200-token prompt leaves 56, so the default is 32.
long=$(python3 -c "print(','.join(str(i % 100 + 1) for i in range(200)))")
out=$("$bin" generate --model "$model" --prompt-ids "$long" --format json 2>"$tmp/err") ||
  fail "a long prompt with the default length failed: $(cat "$tmp/err")"
[ "$(echo "$out" | json_get "len(j['ids'])")" = 32 ] || fail "default length should shrink to 32: $out"
if "$bin" generate --model "$model" --prompt-ids "$long" --gen-length 64 2>"$tmp/err" >/dev/null; then
  fail "a given length beyond the context accepted"
fi
grep -q -- "--gen-length 64 exceeds the model's context of 256" "$tmp/err" || fail "message: $(cat "$tmp/err")"

# Every subcommand's help: each option with a value has a default (or is required).
for cmd in "generate" "chat" "score" "eval" "logits" "info" "init" "train" "data prepare" "tokenize" \
           "detokenize" "tokenizer train" "demo"; do
  # shellcheck disable=SC2086
  "$bin" $cmd --help >"$tmp/help" || fail "$cmd --help failed"
  python3 - "$cmd" "$tmp/help" <<'PY' || fail "help of $cmd"
import re, sys
cmd, raw = sys.argv[1], open(sys.argv[2]).read().splitlines()
lines = []  # an option's description may continue on the next line
for l in raw:
    if lines and l.startswith("  ") and not l.lstrip().startswith("-") and lines[-1].lstrip().startswith("-"):
        lines[-1] += " " + l.strip()
    else:
        lines.append(l)
bad = []
for l in lines:
    m = re.match(r"\s+(-\S+(?:,-\S+)*)\s+(TEXT|INT|UINT|FLOAT)\b", l)
    if not m or m.group(1).startswith("-h"):
        continue
    if "REQUIRED" not in l and "default" not in l:
        bad.append(l.strip())
    if m.group(2) in ("INT", "UINT", "FLOAT") and not re.search(r"\[(>=? |\(|-?[0-9])", l):
        bad.append("no range: " + l.strip())
if bad:
    sys.exit(f"{cmd} --help: options without a default or range:\n  " + "\n  ".join(bad))
PY
done
echo "flag_defaults: ok"
