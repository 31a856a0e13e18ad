#!/usr/bin/env bash
# illada's samplers next to llama.cpp's own diffusion sampler, on the same GGUF file of each type.
# The checkpoint and prompt of bench/generate_compare.sh (random weights of bench/configs/SIZE,
# prompt 64 + answer 256, block 32); per type, ROUNDS rounds alternate `illada generate` with
# the reference sampler, `illada generate --cache dual` and build/llama_diffusion (llama.cpp's
# examples/diffusion code over its prebuilt libraries, settings as llama-diffusion-cli runs
# LLaDA; scripts/fetch_test_assets.sh installs it), 2 threads each. Each side's own generation
# time (the load excluded); the table gives the medians and llama.cpp's time over illada's.
# Usage: bench/llama_sampler_compare.sh [small|1b] [STEPS] [ROUNDS]   TYPES="bf16 q8_0 q4_0 q4_k_m"
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ILLADA_BIN:-$root/build/illada}
llama=${LLAMA_DIFFUSION:-$root/build/llama_diffusion}
size=${1:-small}
steps=${2:-32}
rounds=${3:-2}
[ -x "$llama" ] || { echo "no $llama: run scripts/fetch_test_assets.sh, then cmake and build" >&2; exit 1; }
(( steps % 8 == 0 )) || { echo "STEPS must be a multiple of the 8 blocks of the answer" >&2; exit 2; }
dir=${TMPDIR:-/tmp}/illada_bench_$size
[ -f "$dir/config.json" ] || "$bin" init --config "$root/bench/configs/$size.json" --out "$dir" --dtype bf16 --seed 1 >/dev/null
vocab=$(python3 -c "import json; print(json.load(open('$dir/config.json'))['vocab_size'] - 8)")
prompt=$(python3 -c "print(','.join(str((i * 7919 + 13) % $vocab) for i in range(64)))")
export OMP_NUM_THREADS=2
illada_s() {  # illada_s FILE FLAGS...: generation seconds
  "$bin" generate --model "$1" --prompt-ids "$prompt" --dtype bf16 --gen-length 256 --block-length 32 \
    --steps "$steps" "${@:2}" --format json | python3 -c "import json, sys; print(json.load(sys.stdin)['seconds'])"
}
llama_s() {
  "$llama" "$1" "$prompt" 256 32 $((steps / 8)) 2 2>/dev/null | python3 -c "import json, sys; print(json.load(sys.stdin)['seconds'])"
}
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), 2 threads; model $size, $steps steps; $rounds rounds; load at start $(cut -d' ' -f1 /proc/loadavg)"
echo "| type | illada reference s | illada dual cache s | llama.cpp diffusion s | llama.cpp / reference | llama.cpp / dual cache |"
echo "|---|---|---|---|---|---|"
for t in ${TYPES:-q8_0 q4_0 q4_k_m}; do
  f=$dir/model-$t.gguf
  [ -f "$f" ] || "$bin" quantize --model "$dir" --type "$t" --out "$f" --quiet >/dev/null 2>&1
  ref=(); dual=(); ll=()
  for r in $(seq 1 "$rounds"); do
    ref+=("$(illada_s "$f")"); dual+=("$(illada_s "$f" --cache dual)"); ll+=("$(llama_s "$f")")
  done
  python3 - "$t" "${ref[*]}" "${dual[*]}" "${ll[*]}" <<'PY'
import statistics, sys
t = sys.argv[1]
r, d, l = (statistics.median(float(x) for x in a.split()) for a in sys.argv[2:5])
print(f"| {t} | {r:.2f} | {d:.2f} | {l:.2f} | {l / r:.2f}x | {l / d:.2f}x |")
PY
done
