#!/usr/bin/env bash
# Quantising one checkpoint with `illada quantize` and with llama.cpp's own quantiser
# (llama_model_quantize of the npm prebuilt libllama, through build/llama_interop;
# scripts/fetch_test_assets.sh installs it), 2 threads each, the same bf16 weights: illada
# reads the checkpoint directory, llama.cpp the bf16 GGUF file illada writes of it once. Wall
# seconds, median of ROUNDS alternated rounds, and whether the two output files are byte for
# byte the same. Two more illada columns cap its instruction set (ILLADA_ISA): avx2 (the search on
# 8 lanes, as on a CPU without AVX-512) and scalar (the scalar code every CPU ran before
# kernels/cpu/quant_wide.h); the same bytes at every level.
# Usage: bench/quantize_compare.sh [small|1b] [ROUNDS]   TYPES="q4_k_m q6_k q8_0 q4_0"
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=${ILLADA_BIN:-$root/build/illada}
llama=${LLAMA_INTEROP:-$root/build/llama_interop}
size=${1:-small}
rounds=${2:-2}
[ -x "$llama" ] || { echo "no $llama: run scripts/fetch_test_assets.sh, then cmake and build" >&2; exit 1; }
dir=${TMPDIR:-/tmp}/illada_bench_$size
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
[ -f "$dir/config.json" ] || "$bin" init --config "$root/bench/configs/$size.json" --out "$dir" --dtype bf16 --seed 1 >/dev/null
[ -f "$dir/model-bf16.gguf" ] || "$bin" quantize --model "$dir" --type bf16 --out "$dir/model-bf16.gguf" --quiet >/dev/null
export OMP_NUM_THREADS=2
BENCH_ERR="$out/err"
source "$root/bench/lib.sh"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), 2 threads; model $size; $rounds rounds; load at start $(cut -d' ' -f1 /proc/loadavg)"
echo "| type | illada s | llama.cpp s | illada avx2 s | illada scalar s | llama.cpp / illada | llama.cpp / illada avx2 | scalar / illada | same bytes |"
echo "|---|---|---|---|---|---|---|---|---|"
for t in ${TYPES:-q4_k_m q6_k q8_0 q4_0}; do
  il=(); ll=(); a2=(); sc=()
  for r in $(seq 1 "$rounds"); do
    il+=("$(secs "$bin" quantize --model "$dir" --type "$t" --out "$out/illada.gguf" --quiet)")
    ll+=("$(secs "$llama" quantize "$dir/model-bf16.gguf" "$out/llama.gguf" "$t")")
    a2+=("$(ILLADA_ISA=avx2 secs "$bin" quantize --model "$dir" --type "$t" --out "$out/avx2.gguf" --quiet)")
    sc+=("$(ILLADA_ISA=scalar secs "$bin" quantize --model "$dir" --type "$t" --out "$out/scalar.gguf" --quiet)")
  done
  same=no
  cmp -s "$out/illada.gguf" "$out/llama.gguf" && cmp -s "$out/illada.gguf" "$out/avx2.gguf" &&
    cmp -s "$out/illada.gguf" "$out/scalar.gguf" && same=yes
  python3 - "$t" "${il[*]}" "${ll[*]}" "${a2[*]}" "${sc[*]}" "$same" <<'PY'
import statistics, sys
t, same = sys.argv[1], sys.argv[6]
i, l, a, s = (statistics.median(float(x) for x in v.split()) for v in sys.argv[2:6])
print(f"| {t} | {i:.2f} | {l:.2f} | {a:.2f} | {s:.2f} | {l / i:.2f}x | {l / a:.2f}x | {s / i:.2f}x | {same} |")
PY
done
