#!/usr/bin/env bash
# Peak memory and time at the LLaDA-8B shape, on random weights: a 512-token forward in bf16
# and on quantised GGUF files (q8_0, q4_k_m by default), the load time of each from a warm page
# cache, and the seconds per dual-cache step of `illada generate`.
# Writes a 16 GB checkpoint (random bf16, 4 shards) into DIR (default /tmp/illada_8b) once and
# the GGUF files next to it (8.5 GB q8_0, 4.9 GB q4_k_m). Not part of CI (disk and minutes).
# Usage: bench/memory_8b.sh [DIR]    TYPES="q8_0 q4_k_m" BF16=1 STEPS=4 to choose what runs;
#        CONFIG=bench/configs/small.json for a quick check of the script itself
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ILLADA_BIN:-$root/build/illada}
dir=${1:-/tmp/illada_8b}
types=${TYPES:-"q8_0 q4_k_m"}
steps=${STEPS:-4}
timed() {  # timed LABEL CMD...: one line "LABEL: wall s, peak RSS GB"
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o /tmp/illada_8b_time "$@" > /dev/null 2> /tmp/illada_8b_err ||
    { echo "$label failed:"; tail -5 /tmp/illada_8b_err; exit 1; }
  read -r wall kb < /tmp/illada_8b_time
  printf '%-58s %8.1f s  peak RSS %6.2f GB\n' "$label" "$wall" "$(echo "$kb / 1048576" | bc -l)"
}
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; OMP_NUM_THREADS=${OMP_NUM_THREADS:-all}"
if [ ! -f "$dir/config.json" ]; then
  timed "init (random bf16 weights)" \
    "$bin" init --config "${CONFIG:-$root/bench/configs/llada_8b.json}" --out "$dir" --dtype bf16 --seed 1 --shard-gb 5
fi
vocab=$(python3 -c "import json, sys; c = json.load(open(sys.argv[1])); print(min(c['vocab_size'], 126000))" "$dir/config.json")
ids=$(python3 -c "import sys; print(','.join(str((i * 7919) % int(sys.argv[1])) for i in range(512)))" "$vocab")
prompt=$(python3 -c "import sys; print(','.join(str((i * 7919) % int(sys.argv[1])) for i in range(64)))" "$vocab")
run_model() {  # run_model NAME MODEL
  local name=$1 model=$2
  "$bin" logits --model "$model" --dtype bf16 --ids 1 --out /tmp/illada_8b_logits.f32 > /dev/null 2>&1 || true  # warm the page cache
  timed "$name: load + 1-token forward (warm page cache)" \
    "$bin" logits --model "$model" --dtype bf16 --ids 1 --out /tmp/illada_8b_logits.f32
  timed "$name: load + 512-token forward (illada logits)" \
    "$bin" logits --model "$model" --dtype bf16 --ids "$ids" --out /tmp/illada_8b_logits.f32
  # Dual cache: the first step of a block runs the whole canvas, the others only the block.
  # Random weights never reach a confidence threshold, so every step commits one token.
  timed "$name: generate 64 + 32 tokens, $steps steps, dual cache" \
    "$bin" generate --model "$model" --prompt-ids "$prompt" --gen-length 32 --block-length 32 \
    --steps "$steps" --cache dual --quiet
}
if [ "${BF16:-1}" = 1 ]; then run_model bf16 "$dir"; fi
for t in $types; do
  f=$dir/model-$t.gguf
  if [ ! -f "$f" ]; then timed "quantize to $t" "$bin" quantize --model "$dir" --type "$t" --out "$f" --quiet; fi
  printf '%s: %.2f GB file\n' "$t" "$(stat -c %s "$f" | awk '{print $1 / 1073741824}')"
  run_model "$t" "$f"
done
