#!/usr/bin/env bash
# Interop with the real llama.cpp (npm @node-llama-cpp/linux-x64@3.22.1 = llama.cpp de3ff815,
# through build/llama_interop, see tools/llama_cpp/README.md):
#  (a) `illada quantize` from an f32 GGUF (and straight from the model directory) writes the
#      bytes llama_model_quantize writes, for q8_0, q4_0, q4_k, q6_k and q4_k_m;
#  (b) files illada writes load in llama.cpp, and its non-causal logits equal illada's: f32 to
#      1e-4 of the logit scale (tied + GQA, untied + MHA, and a model with a real tokenizer);
#      f16, bf16 and the quantised types within the rounding llama.cpp adds (it rounds the
#      activations to the weights' precision: f16, bf16, q8_0/q8_K blocks);
#  (c) illada loads what llama.cpp wrote (its f32, f16 and q8_0 outputs) and matches its logits;
#  (d) llama.cpp's own diffusion sampler (its examples/diffusion code, build/llama_diffusion) runs
#      a file illada wrote as LLaDA: mask id from the file, no logit shift, every masked
#      position of the answer filled with a real token, one block at a time;
#  and llama.cpp tokenizes text with the tokenizer.ggml.* keys as illada does.
# Fails (does not skip) when the harness is missing.
# Usage: gguf_llama_cpp.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
llama=$(dirname "$bin")/llama_interop
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ ! -x "$llama" ]; then
  fail "$llama was not built: run scripts/fetch_test_assets.sh (installs llama.cpp's libraries and headers), then cmake and build again"
fi
export LLAMA_INTEROP_QUIET=1

# A model whose rows are whole q4_K / q6_K blocks (d_model 256), GQA, untied, with a trained
# byte-level BPE tokenizer; and the two tiny fixtures.
for i in $(seq 1 300); do echo "The cat $i sat on mat $((i * 7)). A dog ran to park $((i % 13)) and back at $((i * 3)) pm. Café 東京 $i"; done > "$tmp/text.txt"
"$bin" tokenizer train --input "$tmp/text.txt" --vocab-size 360 --out "$tmp/m" --quiet
id_of() { "$bin" tokenize --tokenizer "$tmp/m" --text "$1" --no-special; }
mask=$(id_of "<|mdm_mask|>")
cat > "$tmp/config.json" <<JSON
{"d_model": 256, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "mlp_hidden_size": 512,
 "vocab_size": 360, "max_sequence_length": 512, "weight_tying": false, "rope_theta": 500000.0,
 "mask_token_id": $mask, "eos_token_id": $(id_of "<|endoftext|>")}
JSON
"$bin" init --config "$tmp/config.json" --out "$tmp/m" --seed 11 >/dev/null
m=$tmp/m

# (a) byte-identical quantisation.
"$bin" quantize --model "$m" --type f32 --out "$tmp/m_f32.gguf" --quiet >/dev/null
"$bin" quantize --model "$src/tests/fixtures/tiny_gqa" --type f32 --out "$tmp/g_f32.gguf" --quiet >/dev/null 2>&1
for model in m g; do
  for t in q8_0 q4_0 q4_k q6_k q4_k_m; do
    # illada's q4_k is every matrix in q4_K: llama.cpp's --pure over Q4_K_S
    case $t in q4_k) lt=(q4_k_s --pure) ;; *) lt=("$t") ;; esac
    "$llama" quantize "$tmp/${model}_f32.gguf" "$tmp/ll_${model}_$t.gguf" "${lt[@]}" >/dev/null ||
      fail "llama_model_quantize $t failed"
    "$bin" quantize --model "$tmp/${model}_f32.gguf" --type $t --out "$tmp/il_${model}_$t.gguf" --quiet >/dev/null
    cmp "$tmp/ll_${model}_$t.gguf" "$tmp/il_${model}_$t.gguf" ||
      fail "$t from ${model}_f32.gguf: illada's bytes differ from llama_model_quantize's"
  done
done
for t in q8_0 q4_k_m q6_k; do
  "$bin" quantize --model "$m" --type $t --out "$tmp/dir_$t.gguf" --quiet >/dev/null
  cmp "$tmp/ll_m_$t.gguf" "$tmp/dir_$t.gguf" || fail "$t straight from the directory differs from llama.cpp's"
done
python3 - "$tmp/ll_m_q4_k_m.gguf" <<'PY' || fail "the q4_k_m file should mix q4_K and q6_K"
import struct, sys
b = open(sys.argv[1], "rb").read()
assert b"\x0c\x00\x00\x00" in b and b"\x0e\x00\x00\x00" in b  # ggml types 12 (q4_K), 14 (q6_K)
PY

# Logits: illada on FILE_A vs llama.cpp on FILE_B, max |difference| <= TOL * max |logit|.
compare() {  # compare WHAT TOL ILLADA_FILE LLAMA_FILE
  local what=$1 tol=$2 a=$3 b=$4
  python3 - "$a" "$b" "$tol" "$what" <<'PY' || fail "$what: logits differ (see above)"
import array, sys
a = array.array("f", open(sys.argv[1], "rb").read())
b = array.array("f", open(sys.argv[2], "rb").read())
tol, what = float(sys.argv[3]), sys.argv[4]
assert len(a) == len(b) and len(a) > 0, f"{what}: {len(a)} vs {len(b)} values"
scale = max(abs(x) for x in a)
diff = max(abs(x - y) for x, y in zip(a, b))
print(f"{what}: max |diff| {diff:.3g} = {diff / scale:.2e} of the logit scale {scale:.3g} (limit {tol:g})")
assert diff <= tol * scale
PY
}
ids=1,5,9,300,2,77,14,200,31,$mask,$mask,$mask
fixture_ids=0,5,7,9,5,100,3,64,127,2,5,5

# (b) files written by illada, in llama.cpp.
for fx in tiny_gqa tiny_mha; do
  "$bin" quantize --model "$src/tests/fixtures/$fx" --type f32 --out "$tmp/$fx.gguf" --quiet >/dev/null 2>&1
  "$bin" logits --model "$src/tests/fixtures/$fx" --ids $fixture_ids --out "$tmp/$fx.il" >/dev/null
  "$llama" logits "$tmp/$fx.gguf" $fixture_ids "$tmp/$fx.ll" >/dev/null || fail "llama.cpp could not run $fx.gguf"
  compare "$fx f32" 1e-4 "$tmp/$fx.il" "$tmp/$fx.ll"
done
"$bin" logits --model "$m" --ids $ids --dtype f32 --out "$tmp/m.il" >/dev/null
"$llama" logits "$tmp/m_f32.gguf" $ids "$tmp/m_f32.ll" >/dev/null || fail "llama.cpp could not run m_f32.gguf"
compare "d256 f32" 1e-4 "$tmp/m.il" "$tmp/m_f32.ll"
for t in f16:2e-3 bf16:2e-2 q8_0:5e-2 q4_0:5e-2 q4_k:5e-2 q6_k:5e-2 q4_k_m:5e-2; do
  ty=${t%%:*}
  [ -f "$tmp/il_m_$ty.gguf" ] || "$bin" quantize --model "$m" --type "$ty" --out "$tmp/il_m_$ty.gguf" --quiet >/dev/null
  # illada runs the same weights, dequantised, in f32
  "$bin" quantize --model "$tmp/il_m_$ty.gguf" --type f32 --out "$tmp/deq_$ty.gguf" --quiet >/dev/null
  "$bin" logits --model "$tmp/deq_$ty.gguf" --ids $ids --dtype f32 --out "$tmp/$ty.il" >/dev/null
  "$llama" logits "$tmp/il_m_$ty.gguf" $ids "$tmp/$ty.ll" >/dev/null || fail "llama.cpp could not run the $ty file"
  compare "d256 $ty" "${t#*:}" "$tmp/$ty.il" "$tmp/$ty.ll"
done

# (c) files llama.cpp wrote, in illada.
for t in f32:1e-4 f16:2e-3; do
  ty=${t%%:*}
  "$llama" quantize "$tmp/m_f32.gguf" "$tmp/by_llama_$ty.gguf" "$ty" >/dev/null || fail "llama_model_quantize $ty"
  "$bin" logits --model "$tmp/by_llama_$ty.gguf" --ids $ids --dtype f32 --out "$tmp/by_$ty.il" >/dev/null ||
    fail "illada could not load llama.cpp's $ty file"
  "$llama" logits "$tmp/by_llama_$ty.gguf" $ids "$tmp/by_$ty.ll" >/dev/null
  compare "llama.cpp's $ty file" "${t#*:}" "$tmp/by_$ty.il" "$tmp/by_$ty.ll"
done
"$bin" quantize --model "$tmp/ll_m_q8_0.gguf" --type f32 --out "$tmp/by_q8.gguf" --quiet >/dev/null
"$bin" logits --model "$tmp/by_q8.gguf" --ids $ids --dtype f32 --out "$tmp/by_q8.il" >/dev/null
"$llama" logits "$tmp/ll_m_q8_0.gguf" $ids "$tmp/by_q8.ll" >/dev/null
compare "llama.cpp's q8_0 file" 5e-2 "$tmp/by_q8.il" "$tmp/by_q8.ll"

# (d) llama.cpp's diffusion sampler on a file illada wrote: prompt 8 + answer 24 in blocks of 8,
# 2 steps per block. llama.cpp counts 4 blocks over the canvas; the last starts past its end and
# runs one forward pass before it finds no mask, so 3 * 2 + 1 passes.
diffusion=$(dirname "$bin")/llama_diffusion
[ -x "$diffusion" ] || fail "$diffusion was not built: run scripts/fetch_test_assets.sh (installs llama.cpp's diffusion sampler), then cmake and build again"
"$diffusion" "$tmp/il_m_q8_0.gguf" 1,5,9,300,2,77,14,200 24 8 2 > "$tmp/diffusion.json" 2> "$tmp/diffusion.err" ||
  fail "llama.cpp's diffusion sampler failed on illada's q8_0 file: $(tail -3 "$tmp/diffusion.err")"
python3 - "$tmp/diffusion.json" "$mask" <<'PY' || fail "llama.cpp's diffusion sampler: unexpected answer (see above)"
import json, sys
j, mask = json.load(open(sys.argv[1])), int(sys.argv[2])
print("llama.cpp diffusion sampler:", j)
assert j["shift_logits"] is False, "llama.cpp read diffusion.shift_logits as true"
assert len(j["ids"]) == 24 and all(0 <= t < 360 and t != mask for t in j["ids"]), j["ids"]
assert j["forwards"] == 7, j["forwards"]
PY

# Tokenizer: llama.cpp (tokenizer.ggml.*, pre-tokenizer smaug-bpe) splits text as illada does.
while IFS= read -r text; do
  a=$("$bin" tokenize --tokenizer "$m" --text "$text" --no-special | tr ' ' ',')
  b=$("$llama" tokenize "$tmp/m_f32.gguf" "$text")
  [ "$a" = "$b" ] || fail "tokens of '$text': illada $a, llama.cpp $b"
done <<'TEXTS'
The cat 12 sat on mat 84.
A dog ran to park 5 and back at 3 pm.
  Café   東京 1234567 don't
tabs	and
newlines
TEXTS
echo "gguf_llama_cpp: all checks passed"
