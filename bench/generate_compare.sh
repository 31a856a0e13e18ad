#!/usr/bin/env bash
# Generation speed of illada next to the official LLaDA generate() in PyTorch (bf16, 2
# threads; tools/reference/bench_generate.py) on the same random-weight checkpoint, in one run.
# Prompt 64 + answer 256, block 32. Usage: bench/generate_compare.sh [small|1b] [STEPS]
# QUANT="q8_0 q4_0 q4_k_m" adds, per type, the reference sampler and the dual cache on a GGUF
# file of the same weights (written once next to the checkpoint by `illada quantize`).
# LLAMA=1 adds, for bf16 and each QUANT type, llama.cpp's own diffusion sampler on the same GGUF
# file (build/llama_diffusion: its examples/diffusion code over the prebuilt libllama, settings as
# llama-diffusion-cli runs LLaDA; scripts/fetch_test_assets.sh installs both).
# ROWS="reference dual" keeps only the illada bf16 rows whose flags are named (reference,
# variable, threshold, prefix, dual, threshold+dual).
# Needs build/illada (or the binary in ILLADA_BIN) and Debian's python3-torch
# (ILLADA_WITH_TORCH=1 scripts/install_deps.sh).
# Both sides inherit OMP_WAIT_POLICY: leave it unset on an idle machine (spinning threads are
# faster), set it to passive for both on a shared one.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ILLADA_BIN:-$root/build/illada}
size=${1:-small}
steps=${2:-256}
dir=${TMPDIR:-/tmp}/illada_bench_$size
[ -f "$dir/config.json" ] || "$bin" init --config "$root/bench/configs/$size.json" --out "$dir" --dtype bf16 --seed 1 >/dev/null
vocab=$(python3 -c "import json; print(json.load(open('$dir/config.json'))['vocab_size'] - 8)")
prompt=$(python3 -c "print(','.join(str((i * 7919 + 13) % $vocab) for i in range(64)))")
common=(--gen-length 256 --block-length 32 --steps "$steps")
row() {  # row KEY NAME ILLADA_FLAGS... (MODEL=FILE: another model file of the same weights)
  [ -z "${ROWS:-}" ] || [[ " $ROWS " == *" $1 "* ]] || [ -n "${MODEL:-}" ] || return 0
  local name=$2; shift 2
  local j
  j=$(OMP_NUM_THREADS=2 "$bin" generate --model "${MODEL:-$dir}" --prompt-ids "$prompt" --dtype bf16 "${common[@]}" "$@" --format json)
  python3 -c "import json,sys; j=json.loads(sys.argv[1]); print(f\"| illada {sys.argv[2]} | {j['nfe']} | {j['seconds']:.2f} | {256/j['seconds'] if not j.get('stopped_at_eos') else len(j['ids'])/j['seconds']:.1f} |\")" "$j" "$name"
}
echo "machine: $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg); model $size; steps $steps"
echo "| sampler | nfe | seconds | tokens/s |"
echo "|---|---|---|---|"
tj=$(/usr/bin/python3 "$root/tools/reference/bench_generate.py" --model-dir "$dir" --prompt-len 64 "${common[@]}" --threads 2 --warmup 1 --repeats 1)
python3 -c "import json,sys; j=json.loads(sys.argv[1]); print(f\"| PyTorch official generate() | {j['nfe']} | {j['seconds']:.2f} | {j['tokens_per_s']:.1f} |\")" "$tj"
row reference "reference sampler"
row variable "variable length" --variable-length --max-length 256
row threshold "threshold 0.9" --threshold 0.9
row prefix "prefix cache" --cache prefix
row dual "dual cache" --cache dual
row threshold+dual "threshold 0.9 + dual cache" --threshold 0.9 --cache dual
llama_row() {  # llama_row TYPE: llama.cpp's diffusion sampler on model-TYPE.gguf
  [ -n "${LLAMA:-}" ] || return 0
  local llama=${LLAMA_DIFFUSION:-$root/build/llama_diffusion} j
  [ -x "$llama" ] || { echo "no $llama: run scripts/fetch_test_assets.sh, then cmake and build" >&2; exit 1; }
  j=$(OMP_NUM_THREADS=2 "$llama" "$dir/model-$1.gguf" "$prompt" 256 32 $((steps / 8)) 2 2>/dev/null)
  python3 -c "import json,sys; j=json.loads(sys.argv[1]); print(f\"| llama.cpp diffusion sampler, {sys.argv[2]} | {j['forwards']} | {j['seconds']:.2f} | {256/j['seconds']:.1f} |\")" "$j" "$1"
}
quantized() {  # quantized TYPE: model-TYPE.gguf of the checkpoint's weights, written once
  [ -f "$dir/model-$1.gguf" ] || "$bin" quantize --model "$dir" --type "$1" --out "$dir/model-$1.gguf" --quiet >/dev/null
}
if [ -n "${LLAMA:-}" ]; then
  quantized bf16
  llama_row bf16
fi
for t in ${QUANT:-}; do
  quantized "$t"
  MODEL="$dir/model-$t.gguf" row reference "reference sampler, $t"
  MODEL="$dir/model-$t.gguf" row dual "dual cache, $t" --cache dual
  llama_row "$t"
done
