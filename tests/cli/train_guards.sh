#!/usr/bin/env bash
# Training refuses what would silently give a wrong run:
#  - a learning rate that is NaN, 0 or negative, from the command line or the config file
#    (it trained at 2e-4 and recorded "lr": null);
#  - a --out that holds a previous run, without --resume (the old checkpoints stayed beside the
#    new ones); --force replaces it;
#  - a training_state.json with an absurd, mistyped or mismatched step, or a checkpoint whose
#    weights hold NaN;
#  - a diverged run: the checkpoint of the weights that gave the non-finite loss is set aside
#    (never resumed from, never called good) and the message names the last good one.
# Usage: train_guards.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin="$1"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "train_guards: $*" >&2; exit 1; }
cd "$tmp"
source "$2/tests/cli/lib/tiny_corpus.sh"
tiny_corpus "$bin" 3 200

expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1; shift
  local rc=0
  "$bin" "$@" >out 2>err || rc=$?
  [ "$rc" -ne 0 ] || fail "accepted (exit 0): $*"
  [ "$rc" -lt 128 ] || fail "crashed (signal $((rc - 128))): $*"
  grep -q -- "$pattern" err || fail "message for '$*' lacks '$pattern': $(cat err)"
}
args=(--model-config model.json --tokenizer tok --data data --seq-len 32 --batch-size 4 --no-progress)

# Learning rates from a config file (the command line is checked in flag_vocabulary.sh).
for lr in 0 -0.5 1e400; do
  echo "{\"lr\": $lr}" > lr.json
  if [ "$lr" = 1e400 ]; then
    expect_error "lr.json" train --config lr.json "${args[@]}" --out r --steps 2
  else
    expect_error "lr (--lr) must be a positive finite number, got $lr" train --config lr.json "${args[@]}" --out r --steps 2
  fi
done
echo '{"beta1": 1.5}' > b.json
expect_error "beta1 (--beta1) must be in \[0, 1)" train --config b.json "${args[@]}" --out r --steps 2
[ ! -e r ] || fail "a refused run created its --out"

# A previous run in --out.
"$bin" train "${args[@]}" --out run --steps 6 --checkpoint-every 2 >/dev/null
expect_error "holds a previous training run (checkpoints, metrics.jsonl, final, run_config.json" \
  train "${args[@]}" --out run --steps 4 --checkpoint-every 4
[ -d run/checkpoints/step-00000002 ] || fail "a refused run touched the old checkpoints"
"$bin" train "${args[@]}" --out run --steps 4 --checkpoint-every 4 --force >/dev/null || fail "--force"
[ "$(ls run/checkpoints)" = "step-00000004" ] || fail "--force left old checkpoints: $(ls run/checkpoints)"
[ "$(wc -l < run/metrics.jsonl)" -le 8 ] || fail "--force kept old metrics"

# Training states that are wrong.
state=run/checkpoints/step-00000004/training_state.json
cp "$state" state.orig
python3 - "$state" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); s["step"] = 99999999; json.dump(s, open(sys.argv[1], "w"))
PY
expect_error "step 99999999 is outside this run's 1..8 steps" train "${args[@]}" --out run --steps 8 --resume
python3 - "$state" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); s["step"] = "4"; json.dump(s, open(sys.argv[1], "w"))
PY
expect_error "'step' must be an integer, got \"4\"" train "${args[@]}" --out run --steps 8 --resume
python3 - "$state" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); s["step"] = 3; json.dump(s, open(sys.argv[1], "w"))
PY
expect_error "step 3 does not match the checkpoint's name step-00000004" train "${args[@]}" --out run --steps 8 --resume
cp state.orig "$state"
python3 - run/checkpoints/step-00000004/model.safetensors <<'PY'
import json, struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
n = struct.unpack("<Q", data[:8])[0]
t = json.loads(data[8:8 + n])["model.transformer.blocks.1.up_proj.weight"]
assert t["dtype"] == "F32"
off = 8 + n + t["data_offsets"][0]
data[off:off + 4] = struct.pack("<f", float("nan"))
open(sys.argv[1], "wb").write(data)
PY
expect_error "weights hold NaN/Inf" train "${args[@]}" --out run --steps 8 --resume

# A diverging run: huge learning rate, a checkpoint every step.
expect_error "training stopped: .* at step 1" \
  train "${args[@]}" --out nan --steps 6 --lr 1e30 --warmup 0 --grad-clip 0 --checkpoint-every 1
grep -q "set aside as nan/checkpoints/step-00000001.diverged" err || fail "the failed step's checkpoint was not set aside: $(cat err)"
grep -q "no good checkpoint" err || fail "a checkpoint of the diverged weights was called good: $(cat err)"
[ ! -e nan/checkpoints/step-00000001 ] || fail "the diverged checkpoint can still be resumed from"
[ ! -e nan/final ] || fail "a diverged run wrote a final model"
# --resume does not pick the set-aside checkpoint up: it starts over (and diverges again).
expect_error "at step 1" train "${args[@]}" --out nan --steps 6 --lr 1e30 --warmup 0 --grad-clip 0 --checkpoint-every 1 --resume
grep -q "resuming from" err && fail "resumed from a diverged checkpoint: $(cat err)"
echo "train_guards: ok"
