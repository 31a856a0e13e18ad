#!/usr/bin/env bash
# Peak memory of a 512-token bf16 forward at the LLaDA-8B shape, on random weights.
# Writes a 16 GB checkpoint (random bf16, 4 shards) into DIR (default /tmp/illada_8b) once,
# then runs `illada logits` under /usr/bin/time. Not part of CI (disk and minutes).
# Usage: bench/memory_8b.sh [DIR]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$root/build/illada
dir=${1:-/tmp/illada_8b}
if [ ! -f "$dir/config.json" ]; then
  /usr/bin/time -f "init: %e s, peak RSS %M KB" \
    "$bin" init --config "$root/bench/configs/llada_8b.json" --out "$dir" --dtype bf16 --seed 1 --shard-gb 5
fi
ids=$(python3 -c "print(','.join(str((i * 7919) % 126000) for i in range(512)))")
/usr/bin/time -f "forward 512 tokens bf16: %e s wall, peak RSS %M KB" \
  "$bin" logits --model "$dir" --ids "$ids" --dtype bf16 --out /tmp/illada_8b_logits.f32
