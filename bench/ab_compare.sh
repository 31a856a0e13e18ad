#!/usr/bin/env bash
# Speed of two builds of illada measured in the same run: the forward, generate and train-step
# benchmarks of build A and build B alternate (A, B, A, B, ...) for ROUNDS rounds, so that load
# from other processes falls on both alike; prints each round's figures, the B/A ratios and
# their median and spread. Example: the portable build against an -march=native build of the
# same or an older commit (docs/benchmarks.md, "Portable builds"):
#   cmake -S . -B build-native -DCMAKE_BUILD_TYPE=Release -DILLADA_NATIVE=ON -DILLADA_BUILD_TESTS=OFF
#   cmake --build build-native -j2 --target illada illada_bench
#   bench/ab_compare.sh build-native build 5
# Usage: bench/ab_compare.sh BUILD_DIR_A BUILD_DIR_B [ROUNDS] [FILTER]
# FILTER (default all) picks cases: forward, generate, train (comma-separated).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
a=$(cd "$1" && pwd)
b=$(cd "$2" && pwd)
rounds=${3:-5}
filter=${4:-forward,generate,train}
for d in "$a" "$b"; do
  [ -x "$d/illada" ] && [ -x "$d/illada_bench" ] || { echo "$d: no illada / illada_bench" >&2; exit 1; }
done
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive
work=${TMPDIR:-/tmp}/illada_ab
mkdir -p "$work"
model=$work/small
[ -f "$model/config.json" ] ||
  "$a/illada" init --config "$root/bench/configs/small.json" --out "$model" --dtype bf16 --seed 1 >/dev/null
prompt=$(python3 -c "print(','.join(str((i * 7919 + 13) % 4000) for i in range(64)))")
out=$work/results.jsonl
: > "$out"

# record BUILD NAME VALUE UNIT: one figure (higher is better).
record() { printf '{"build":"%s","case":"%s","value":%s,"unit":"%s"}\n' "$1" "$2" "$3" "$4" >> "$out"; }

run_forward() {  # run_forward TAG DIR
  # The 1B-class fp32 forward is left out: its 4.4 GB of weights would double the memory.
  "$2/illada_bench" --benchmark_filter='^(Forward/small/|Forward/1b/bf16|GenerateForward/)' \
      --benchmark_format=json \
      2>/dev/null > "$work/fwd.json"
  python3 - "$work/fwd.json" "$1" >> "$out" <<'PY'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    name = b["name"].split("/min_time")[0]
    rate = b.get("tokens/s") or b.get("forwards/s")
    unit = "tokens/s" if "tokens/s" in b else "forwards/s"
    print(json.dumps({"build": sys.argv[2], "case": name, "value": rate, "unit": unit}))
PY
}

run_generate() {  # run_generate TAG DIR
  local flags
  for flags in "reference" "dual:--cache dual"; do
    local name=${flags%%:*} extra=""
    [ "$name" = "$flags" ] || extra=${flags#*:}
    # shellcheck disable=SC2086
    local s
    s=$("$2/illada" generate --model "$model" --prompt-ids "$prompt" --dtype bf16 --gen-length 256 \
          --block-length 32 --steps 256 $extra --format json |
        python3 -c "import json,sys; print(256 / json.load(sys.stdin)['seconds'])")
    record "$1" "generate/small/$name" "$s" "tokens/s"
  done
}

run_train() {  # run_train TAG DIR
  "$2/illada_bench" --benchmark_filter='^TrainStep/small/bf16' --benchmark_format=json \
      2>/dev/null > "$work/train.json"
  python3 - "$work/train.json" "$1" >> "$out" <<'PY'
import json, sys
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    print(json.dumps({"build": sys.argv[2], "case": b["name"].split("/min_time")[0],
                      "value": b["tokens/s"], "unit": "tokens/s"}))
PY
}

echo "A = $a"
echo "B = $b"
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; load at start $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
  for c in forward generate train; do
    case ",$filter," in *",$c,"*) ;; *) continue ;; esac
    "run_$c" "A$r" "$a"
    "run_$c" "B$r" "$b"
  done
  echo "round $r done (load $(cut -d' ' -f1 /proc/loadavg))"
done
echo "load at end $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cases = sorted({r["case"] for r in rows}, key=lambda c: [r["case"] for r in rows].index(c))
print("| case | unit | A (median) | B (median) | B/A per round | B/A median | spread |")
print("|---|---|---|---|---|---|---|")
for c in cases:
    a = {r["build"][1:]: r["value"] for r in rows if r["case"] == c and r["build"][0] == "A"}
    b = {r["build"][1:]: r["value"] for r in rows if r["case"] == c and r["build"][0] == "B"}
    ratios = [b[k] / a[k] for k in a if k in b]
    unit = next(r["unit"] for r in rows if r["case"] == c)
    print(f"| {c} | {unit} | {statistics.median(a.values()):.4g} | {statistics.median(b.values()):.4g} | "
          + " ".join(f"{x:.3f}" for x in ratios)
          + f" | **{statistics.median(ratios):.3f}** | {min(ratios):.3f}-{max(ratios):.3f} |")
PY
