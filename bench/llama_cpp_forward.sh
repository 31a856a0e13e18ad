#!/usr/bin/env bash
# One forward pass over N tokens (every position's logits, bidirectional, as llama.cpp's
# diffusion example runs LLaDA) on the same GGUF files in illada and in the real llama.cpp
# (build/llama_interop over the npm prebuilt libraries; scripts/fetch_test_assets.sh), 2 threads.
# Time of a run with N tokens minus a run with 1 token (the load), median of ROUNDS alternated
# rounds. The files: random weights of CONFIG (default bench/configs/small.json) written by
# `illada init` and `illada quantize` into DIR.
# Usage: bench/llama_cpp_forward.sh [DIR] [N] [ROUNDS]    TYPES="q8_0 q4_0 q4_k_m" CONFIG=...
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ILLADA_BIN:-$root/build/illada}
llama=${LLAMA_INTEROP:-$root/build/llama_interop}
dir=${1:-/tmp/illada_llama_fwd}
n=${2:-320}
rounds=${3:-3}
types=${TYPES:-"q8_0 q4_0 q4_k_m"}
export OMP_NUM_THREADS=2
[ -x "$llama" ] || { echo "no $llama: run scripts/fetch_test_assets.sh and rebuild" >&2; exit 1; }
mkdir -p "$dir"
[ -f "$dir/model/config.json" ] ||
  "$bin" init --config "${CONFIG:-$root/bench/configs/small.json}" --out "$dir/model" --dtype bf16 --seed 1 > /dev/null
vocab=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['vocab_size'])" "$dir/model/config.json")
ids=$(python3 -c "import sys; n, v = map(int, sys.argv[1:]); print(','.join(str((i * 7919) % (v - 8)) for i in range(n)))" "$n" "$vocab")
BENCH_ERR="$dir/err"
source "$root/bench/lib.sh"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), 2 threads; $n tokens; load at start $(cut -d' ' -f1 /proc/loadavg)"
echo "| type | illada s | llama.cpp s | llama.cpp / illada |"
echo "|---|---|---|---|"
for t in $types; do
  f=$dir/model-$t.gguf
  [ -f "$f" ] || "$bin" quantize --model "$dir/model" --type "$t" --out "$f" --quiet > /dev/null
  ia=(); la=()
  for r in $(seq 1 "$rounds"); do
    i1=$(secs "$bin" logits --model "$f" --dtype bf16 --ids 1 --out "$dir/i.f32")
    iN=$(secs "$bin" logits --model "$f" --dtype bf16 --ids "$ids" --out "$dir/i.f32")
    l1=$(secs "$llama" logits "$f" 1 "$dir/l.f32")
    lN=$(secs "$llama" logits "$f" "$ids" "$dir/l.f32")
    ia+=("$(echo "$iN - $i1" | bc -l)"); la+=("$(echo "$lN - $l1" | bc -l)")
  done
  python3 - "$t" "${ia[*]}" "${la[*]}" <<'PY'
import statistics, sys
t, i, l = sys.argv[1], [float(x) for x in sys.argv[2].split()], [float(x) for x in sys.argv[3].split()]
mi, ml = statistics.median(i), statistics.median(l)
print(f"| {t} | {mi:.3f} | {ml:.3f} | {ml / mi:.2f}x |")
PY
done
