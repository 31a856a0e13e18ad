#!/usr/bin/env bash
# The paper's ablations at small scale, on the demo's built-in data, for several seeds; writes
# docs/results.md (tables with mean ± standard error over seeds and every per-seed value) from
# the run directories under $OUT (default repro_out/). Every number comes from the commands
# below, run now; nothing is cached. Run time on the 2-core build machine: see docs/results.md.
#
#   bash scripts/reproduce.sh                 # seeds 1 2 3 4
#   SEEDS="1 2" OUT=/tmp/r bash scripts/reproduce.sh
#   RESULTS=/tmp/results.md bash scripts/reproduce.sh   # write the report elsewhere
#
# Per seed S (R = $OUT/seed_S):
#   R/base         illada demo --seed S                 the iLLaDA recipe (split 0.3, whole-sequence SFT)
#   R/nosplit      illada demo --seed S --split-prob 0  ablation 5: no random split in pre-training
#   R/epochs_E     illada demo --seed S --pretrained R/base/pretrained --sft-epochs E   (ablation 2)
#   R/promptclean  illada demo --seed S --pretrained R/base/pretrained --sft-masking prompt-clean (4)
#   R/decode/*.json  illada eval on R/base/sft, open questions, each sampler (ablations 3 and 6)
# Ablation 1 (confidence vs likelihood multiple choice) is in every demo run's summary.json.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
SEEDS=${SEEDS:-"1 2 3 4"}
EPOCHS=${EPOCHS:-"1 2 4 8 12"}
OUT=${OUT:-repro_out}
RESULTS=${RESULTS:-docs/results.md}
# Extra arguments for every `illada demo` run (the smoke test passes "--quick --steps 20").
read -r -a demo_args <<< "${DEMO_ARGS:-}"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

bin=${ILLADA_BIN:-}
if [ -z "$bin" ]; then bash scripts/build.sh > /dev/null; bin=./build/illada; fi
t0=$(date +%s)
# The commit the runs are made from (marked when the working tree has local changes).
commit=$(git rev-parse --short HEAD 2> /dev/null || echo unknown)
git diff --quiet HEAD -- src cli 2> /dev/null || commit="$commit with local changes"
log() { printf '[reproduce %4ds] %s\n' $(( $(date +%s) - t0 )) "$*" >&2; }
run() {  # run DIR CMD...: skips a step whose output exists (delete $OUT to start over)
  local dir=$1; shift
  if [ -f "$dir/done" ]; then log "exists: $dir"; return; fi
  mkdir -p "$dir"
  log "$*"
  printf '%s\n' "$*" > "$dir/command"
  local ts=$(date +%s)
  "$@" > "$dir/stdout" 2> "$dir/stderr" || { tail -20 "$dir/stderr" >&2; log "FAILED: $*"; exit 1; }
  echo $(( $(date +%s) - ts )) > "$dir/seconds"
  touch "$dir/done"
}

for s in $SEEDS; do
  r=$OUT/seed_$s
  run "$r/base" $bin demo "${demo_args[@]}" --seed "$s" --out "$r/base" --no-progress
  run "$r/nosplit" $bin demo "${demo_args[@]}" --seed "$s" --out "$r/nosplit" --split-prob 0 --no-progress
  for e in $EPOCHS; do
    run "$r/epochs_$e" $bin demo "${demo_args[@]}" --seed "$s" --out "$r/epochs_$e" --pretrained "$r/base/pretrained" \
      --sft-epochs "$e" --no-progress
  done
  run "$r/promptclean" $bin demo "${demo_args[@]}" --seed "$s" --out "$r/promptclean" --pretrained "$r/base/pretrained" \
    --sft-masking prompt-clean --no-progress
  # Samplers on the same instruct model and held-out open questions; the demo's generation
  # settings (answers of at most 32 tokens, blocks of 8, one token per step without threshold:
  # 32 steps over the fixed canvas, 8 per block with --variable-length).
  gen=(--model "$r/base/sft" --task "$r/base/data/open.jsonl" --chat --gen-length 32 --block-length 8
       --seed "$s" --quiet)
  for v in fixed variable; do
    vl=(--steps 32); [ "$v" = variable ] && vl=(--variable-length --steps 8)
    for d in reference threshold prefix dual threshold_dual; do
      extra=()
      case $d in
        threshold) extra=(--threshold 0.9) ;;
        prefix) extra=(--cache prefix) ;;
        dual) extra=(--cache dual) ;;
        threshold_dual) extra=(--threshold 0.9 --cache dual) ;;
      esac
      dir=$r/decode/${v}_$d
      run "$dir" $bin eval "${gen[@]}" "${vl[@]}" "${extra[@]}" --out "$dir/examples.jsonl"
    done
  done
done
log "all runs done; writing $RESULTS"
python3 tools/results/make_results.py --runs "$OUT" --seeds "$SEEDS" --epochs "$EPOCHS" \
  --seconds $(( $(date +%s) - t0 )) --commit "$commit" --out "$RESULTS"
log "wrote $RESULTS"
