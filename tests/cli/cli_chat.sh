#!/usr/bin/env bash
# End-to-end check of text generation and `illada chat`: a tokenizer trained with
# `illada tokenizer train`, a random model over its vocabulary, a chat turn through the LLaDA
# chat template, and Ctrl-C during an answer (the session goes on, the terminal is reset).
# Usage: cli_chat.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'kill %1 2>/dev/null || true; rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

for i in $(seq 1 400); do echo "The cat $i sat on mat $((i * 7)). A dog ran to park $((i % 13)) and back again at $((i * 3)) pm."; done > "$tmp/text.txt"
"$bin" tokenizer train --input "$tmp/text.txt" --vocab-size 320 --out "$tmp/m" --quiet
id_of() { "$bin" tokenize --tokenizer "$tmp/m" --text "$1" --no-special; }
mask=$(id_of "<|mdm_mask|>")
eos=$(id_of "<|endoftext|>")
cat > "$tmp/config.json" <<JSON
{"d_model": 32, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "mlp_hidden_size": 64,
 "vocab_size": 320, "max_sequence_length": 4096, "weight_tying": true,
 "mask_token_id": $mask, "eos_token_id": $eos}
JSON
"$bin" init --config "$tmp/config.json" --out "$tmp/m" --seed 1 >/dev/null

# generate from text, with the chat template
out=$("$bin" generate --model "$tmp/m" --prompt "The cat" --chat --gen-length 16 --block-length 8 --steps 8 --format json)
echo "$out" | python3 -c "import json,sys; j=json.load(sys.stdin); assert 'text' in j and len(j['ids']) == 16, j" ||
  fail "generate --prompt --chat: $out"

# sampled byte-level tokens are often invalid UTF-8: JSON output must still be valid
for seed in 1 2 3 4 5 6; do
  out=$("$bin" generate --model "$tmp/m" --prompt "The dog" --gen-length 32 --block-length 8 --steps 8 \
    --temperature 2 --seed "$seed" --format json) || fail "generate --format json, seed $seed"
  echo "$out" | python3 -c "import json,sys; json.load(sys.stdin)" || fail "invalid JSON: $out"
done

# one chat turn from a pipe: an answer line, then exit on the empty line
printf 'hello there\n\n' | "$bin" chat --model "$tmp/m" --gen-length 16 --block-length 8 --steps 8 \
  >"$tmp/chat.out" 2>"$tmp/chat.err" || fail "chat exited with an error: $(cat "$tmp/chat.err")"
[ "$(wc -l <"$tmp/chat.out")" -ge 1 ] || fail "chat printed no answer"

# Ctrl-C during a long answer: the answer stops, the session continues and exits cleanly.
mkfifo "$tmp/in"
"$bin" chat --model "$tmp/m" --gen-length 4000 --block-length 8 --steps 4000 --dtype f32 \
  <"$tmp/in" >"$tmp/int.out" 2>"$tmp/int.err" &
pid=$!
exec 3>"$tmp/in"
echo "tell me a long story" >&3
sleep 2
kill -INT "$pid"
sleep 1
kill -0 "$pid" 2>/dev/null || fail "chat died on Ctrl-C: $(cat "$tmp/int.err")"
echo "" >&3
exec 3>&-
wait "$pid" || fail "chat exited non-zero after Ctrl-C: $(cat "$tmp/int.err")"
grep -q "interrupted" "$tmp/int.err" || fail "no interruption notice: $(cat "$tmp/int.err")"
grep -q $'\033\[0m' "$tmp/int.err" || fail "terminal attributes not reset"
echo "cli_chat: all checks passed"
