#!/usr/bin/env bash
# End-to-end checks of GGUF files in illada itself (llama.cpp's side: gguf_llama_cpp.sh):
# checkpoint -> GGUF (f32 and bf16) gives the same tokens from generate, chat and score, the same
# logits, config and tokenizer; quantised files run generate and score on their blocks (logits
# near the f32 file's), convert back, and report themselves in info; bad flags and bad files give clear errors and leave no output.
# Usage: gguf.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
json_get() { python3 -c "import json,sys; j=json.load(sys.stdin); print($1)"; }

# A model with a trained byte-level BPE tokenizer (GQA, untied head) and one without a
# tokenizer (the tied tiny fixture).
for i in $(seq 1 300); do echo "The cat $i sat on mat $((i * 7)). A dog ran to park $((i % 13)) and back at $((i * 3)) pm. Café 東京 $i"; done > "$tmp/text.txt"
"$bin" tokenizer train --input "$tmp/text.txt" --vocab-size 360 --out "$tmp/m" --quiet
id_of() { "$bin" tokenize --tokenizer "$tmp/m" --text "$1" --no-special; }
cat > "$tmp/config.json" <<JSON
{"d_model": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "mlp_hidden_size": 128,
 "vocab_size": 360, "max_sequence_length": 512, "weight_tying": false, "rms_norm_eps": 1e-5,
 "mask_token_id": $(id_of "<|mdm_mask|>"), "eos_token_id": $(id_of "<|endoftext|>")}
JSON
"$bin" init --config "$tmp/config.json" --out "$tmp/m" --seed 7 >/dev/null
m=$tmp/m
"$bin" quantize --model "$m" --type f32 --out "$tmp/m_f32.gguf" --quiet >/dev/null
"$bin" quantize --model "$m" --type bf16 --out "$tmp/m_bf16.gguf" --quiet --format json > "$tmp/q.json"
[ "$(json_get "j['tensor_types']" < "$tmp/q.json")" = "{'bf16': 16, 'f32': 5}" ] || fail "bf16 file types: $(cat "$tmp/q.json")"
[ "$(json_get "0 <= j['seconds'] < 60" < "$tmp/q.json")" = True ] || fail "quantize seconds: $(cat "$tmp/q.json")"

# Config, tokenizer and logits survive.
cfg() { "$bin" info --model "$1" --format json | json_get "sorted(j['config'].items())"; }
[ "$(cfg "$m")" = "$(cfg "$tmp/m_f32.gguf")" ] || fail "config differs: $(cfg "$tmp/m_f32.gguf")"
text="The cat 12 sat on mat 84. Café 東京 <|endoftext|>"
[ "$("$bin" tokenize --tokenizer "$m" --text "$text")" = "$("$bin" tokenize --tokenizer "$tmp/m_f32.gguf" --text "$text")" ] ||
  fail "tokenize through the GGUF file differs"
"$bin" logits --model "$m" --ids 1,5,9,300,2,77 --out "$tmp/a.f32" >/dev/null
"$bin" logits --model "$tmp/m_f32.gguf" --ids 1,5,9,300,2,77 --out "$tmp/b.f32" >/dev/null
cmp -s "$tmp/a.f32" "$tmp/b.f32" || fail "logits through the f32 GGUF differ"

# generate / chat / score: identical tokens and scores, f32 and bf16.
# JSON output without its timings.
untimed() {
  python3 -c '
import json, sys
def strip(x):
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in ("seconds", "tokens_per_s", "elapsed_s")}
    return [strip(v) for v in x] if isinstance(x, list) else x
print(json.dumps(strip(json.load(sys.stdin)), sort_keys=True))'
}
same() {  # same DESCRIPTION FILE ARGS...: the output with --model DIR and with --model FILE
  local what=$1 file=$2; shift 2
  local a b
  a=$("$bin" "$@" --model "$m" | untimed) || fail "$what on the directory"
  b=$("$bin" "$@" --model "$file" | untimed) || fail "$what on $file"
  [ "$a" = "$b" ] || fail "$what differs: $a vs $b"
}
gen=(generate --prompt "The cat" --gen-length 16 --block-length 8 --steps 8 --format json)
same "generate f32" "$tmp/m_f32.gguf" "${gen[@]}" --dtype f32
same "generate bf16" "$tmp/m_bf16.gguf" "${gen[@]}" --dtype bf16
same "generate sampled" "$tmp/m_f32.gguf" "${gen[@]}" --dtype f32 --temperature 1 --seed 3
same "generate chat threshold dual cache" "$tmp/m_f32.gguf" generate --prompt "A dog" --chat --gen-length 32 \
  --block-length 8 --steps 32 --threshold 0.5 --cache dual --format json --dtype f32
same "generate variable length" "$tmp/m_bf16.gguf" generate --prompt "The cat" --variable-length --max-length 32 \
  --block-length 8 --steps 8 --format json
same "score confidence" "$tmp/m_f32.gguf" score --prompt "The cat sat on" --choices " mat" " park" --format json --dtype f32
same "score likelihood" "$tmp/m_f32.gguf" score --prompt "The cat sat on" --choices " mat" " park" --method likelihood \
  --mc-num 8 --format json --dtype f32
a=$(printf 'hello there\n\n' | "$bin" chat --model "$m" --gen-length 16 --block-length 8 --steps 8 2>/dev/null)
b=$(printf 'hello there\n\n' | "$bin" chat --model "$tmp/m_f32.gguf" --gen-length 16 --block-length 8 --steps 8 2>/dev/null)
[ "$a" = "$b" ] || fail "chat differs: $a vs $b"

# The tied fixture without a tokenizer: ids work, text says what is missing.
fx=$src/tests/fixtures/tiny_gqa
"$bin" quantize --model "$fx" --type f32 --out "$tmp/t.gguf" --quiet >/dev/null 2>"$tmp/warn"
grep -q "has no tokenizer.json" "$tmp/warn" || fail "no warning about the missing tokenizer"
a=$("$bin" generate --model "$fx" --prompt-ids 1,2,3 --gen-length 8 --block-length 8 --steps 8 --format json | untimed)
b=$("$bin" generate --model "$tmp/t.gguf" --prompt-ids 1,2,3 --gen-length 8 --block-length 8 --steps 8 --format json | untimed)
[ "$a" = "$b" ] || fail "tied fixture: $a vs $b"

expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1; shift
  if "$bin" "$@" >"$tmp/out" 2>"$tmp/err"; then fail "accepted: $*"; fi
  grep -q -- "$pattern" "$tmp/err" || fail "message for '$*': $(cat "$tmp/err")"
}
expect_error "carries no tokenizer" generate --model "$tmp/t.gguf" --prompt "hello" --gen-length 8 --block-length 8

# Quantised files: info reports them, inference runs on the blocks, quantize converts them back.
"$bin" quantize --model "$m" --type q4_k_m --out "$tmp/q.gguf" --quiet >/dev/null
"$bin" info --model "$tmp/q.gguf" --format json | json_get "j['tensor_types']" | grep -q "q5_0" || fail "info on q4_k_m (rows of 64: q4_K falls back to q5_0)"
for dt in f32 bf16; do
  "$bin" generate --model "$tmp/q.gguf" --prompt "The cat" --gen-length 8 --block-length 8 --steps 8 --dtype $dt \
    --format json > "$tmp/gq.json" || fail "generate on the q4_k_m file ($dt)"
  json_get "j['nfe']" < "$tmp/gq.json" | grep -qx 8 || fail "q4_k_m generate ($dt): $(cat "$tmp/gq.json")"
  "$bin" score --model "$tmp/q.gguf" --prompt "The cat sat on" --choices " mat" " park" --dtype $dt --format json \
    > "$tmp/sq.json" || fail "score on the q4_k_m file ($dt)"
done
"$bin" quantize --model "$tmp/q.gguf" --type bf16 --out "$tmp/deq.gguf" --quiet >/dev/null
"$bin" generate --model "$tmp/deq.gguf" --prompt "The cat" --gen-length 8 --block-length 8 --steps 8 --format json >/dev/null ||
  fail "the dequantised file does not run"
for t in q8_0 q4_0 q4_k q6_k; do
  "$bin" quantize --model "$tmp/m_f32.gguf" --type $t --out "$tmp/$t.gguf" --quiet >/dev/null || fail "quantize $t"
  "$bin" generate --model "$tmp/$t.gguf" --prompt "The cat" --gen-length 8 --block-length 8 --steps 8 --format json \
    >/dev/null || fail "generate on the $t file"
done
# q8_0's logits are the f32 file's within its rounding (weights and int8 activations).
"$bin" logits --model "$tmp/q8_0.gguf" --ids 1,5,9,300,2,77 --out "$tmp/q8.f32" >/dev/null
python3 - "$tmp/b.f32" "$tmp/q8.f32" <<'PY' || fail "q8_0 logits far from the f32 file's"
import array, sys
a, b = (array.array("f", open(p, "rb").read()) for p in sys.argv[1:])
scale = max(abs(x) for x in a)
diff = max(abs(x - y) for x, y in zip(a, b))
assert len(a) == len(b) and 0 < diff < 0.02 * scale, (len(a), len(b), diff, scale)
PY
"$bin" quantize --model "$m" --type q8_0 --tensor-type 'attn_v=f16' --tensor-type 'ffn_(up|gate)=q4_0' --out "$tmp/o.gguf" \
  --quiet --format json > "$tmp/o.json"
python3 - "$tmp/o.json" <<'PY' || fail "--tensor-type not applied: $(cat "$tmp/o.json")"
import json, sys
t = {x["name"]: x["type"] for x in json.load(open(sys.argv[1]))["tensors"]}
assert t["blk.1.attn_v.weight"] == "f16" and t["blk.0.ffn_up.weight"] == "q4_0", t
assert t["blk.0.ffn_gate.weight"] == "q4_0" and t["blk.0.attn_q.weight"] == "q8_0", t
assert t["blk.0.attn_norm.weight"] == "f32", t
PY

# Bad flags and files: clear errors, no output left behind.
expect_error "--type 'q5_k': expected one of f32, f16, bf16, q8_0, q4_0, q4_k, q6_k, q4_k_m" \
  quantize --model "$m" --type q5_k --out "$tmp/x.gguf"
expect_error "expected PATTERN=TYPE" quantize --model "$m" --type q8_0 --tensor-type attn_v --out "$tmp/x.gguf"
expect_error "type 'q2_K' is not one illada writes" quantize --model "$m" --type q8_0 --tensor-type attn_v=q2_K --out "$tmp/x.gguf"
expect_error "is the input model" quantize --model "$tmp/m_f32.gguf" --type q8_0 --out "$tmp/m_f32.gguf"
expect_error "no such model" quantize --model "$tmp/nothing" --type q8_0 --out "$tmp/x.gguf"
expect_error "keeps its general.name" quantize --model "$tmp/m_f32.gguf" --type q8_0 --name x --out "$tmp/x.gguf"
[ ! -e "$tmp/x.gguf" ] || fail "a failed quantize left $tmp/x.gguf"
ls "$tmp" | grep -q '\.tmp\.' && fail "a temporary file was left behind"
head -c $(($(stat -c %s "$tmp/m_f32.gguf") - 5000)) "$tmp/m_f32.gguf" > "$tmp/cut.gguf"
expect_error "cut.gguf: tensor '.*' .*reaches past the end of the file" generate --model "$tmp/cut.gguf" --prompt-ids 1 --gen-length 8 --block-length 8
head -c 100 /dev/urandom > "$tmp/noise.bin"
expect_error "not a model directory and not a GGUF file" logits --model "$tmp/noise.bin" --ids 1 --out "$tmp/l.f32"
head -c 3000 "$tmp/m_f32.gguf" > "$tmp/cut_meta.gguf"
expect_error "cut_meta.gguf: key 'tokenizer.ggml.tokens' claims 360 elements, more than" info --model "$tmp/cut_meta.gguf"
printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\077\000\000\000\000\000\000\000\000' > "$tmp/huge.gguf"
expect_error "claims 4611686018427387903 tensors" info --model "$tmp/huge.gguf"
echo "gguf: all checks passed"
