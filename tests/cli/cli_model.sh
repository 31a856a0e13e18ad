#!/usr/bin/env bash
# End-to-end checks of `illada info`, `illada logits` and `illada init` on the bundled fixtures,
# including the errors a user sees for bad input. Usage: cli_model.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# info, JSON
"$bin" info --model "$src/tests/fixtures/tiny_gqa" --format json >"$tmp/info.json"
python3 -c "
import json,sys
j=json.load(open('$tmp/info.json'))
assert j['config']['n_kv_heads']==2 and j['config']['weight_tying'] is True, j
assert j['n_params']==j['checkpoint_params'], j
" || fail "info --format json"

# logits: shape line and file size
out=$("$bin" logits --model "$src/tests/fixtures/tiny_mha" --ids 1,2,3,126 --out "$tmp/l.f32")
[ "$out" = '{"shape":[4,128]}' ] || fail "logits printed '$out'"
[ "$(stat -c %s "$tmp/l.f32")" = $((4 * 128 * 4)) ] || fail "logits file size"

# bad input: clear errors, exit code 1, no output file
if "$bin" logits --model "$src/tests/fixtures/tiny_mha" --ids 1,999 --out "$tmp/bad.f32" 2>"$tmp/err"; then
  fail "out-of-vocabulary id accepted"
fi
grep -q "token id 999 at position 1" "$tmp/err" || fail "oov message: $(cat "$tmp/err")"
[ ! -e "$tmp/bad.f32" ] || fail "an output file was left behind"
if "$bin" logits --model "$src/tests/fixtures/tiny_mha" --ids 1,x --out "$tmp/bad.f32" 2>"$tmp/err"; then
  fail "malformed ids accepted"
fi
grep -q -- "--prompt-ids: 'x' is not a token id" "$tmp/err" || fail "ids message: $(cat "$tmp/err")"
if "$bin" info --model "$tmp/nowhere" 2>"$tmp/err"; then fail "missing model accepted"; fi
grep -q "config.json" "$tmp/err" || fail "missing model message: $(cat "$tmp/err")"
if "$bin" logits --model "$src/tests/fixtures/tiny_mha" --ids 1 --dtype f16 --out "$tmp/x" 2>"$tmp/err"; then
  fail "unknown dtype accepted"
fi

# init: random model loads and runs; sharded when asked
"$bin" init --config "$src/tests/fixtures/tiny_gqa/config.json" --out "$tmp/rand" --seed 3 >/dev/null
"$bin" logits --model "$tmp/rand" --ids 0,1,2 --dtype bf16 --out "$tmp/r.f32" >/dev/null
"$bin" init --config "$src/tests/fixtures/tiny_gqa/config.json" --out "$tmp/rand_sh" --seed 3 --shard-gb 0.0001 >/dev/null
[ -f "$tmp/rand_sh/model.safetensors.index.json" ] || fail "init did not shard"
"$bin" logits --model "$tmp/rand_sh" --ids 0,1,2 --dtype bf16 --out "$tmp/r2.f32" >/dev/null
cmp -s "$tmp/r.f32" "$tmp/r2.f32" || fail "sharded and single-file random models differ"
echo "cli_model: all checks passed"
