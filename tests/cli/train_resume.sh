#!/usr/bin/env bash
# Resume guarantee: SIGKILL a training run at a random moment, restart it with --resume from
# its last checkpoint, and check every logged loss, gradient norm, learning rate and held-out
# loss equals an uninterrupted run's bit for bit (and the final weights are identical). The
# cosine decay is started by the plateau rule (whose running block is saved in checkpoints
# taken mid-block), before the explicit --decay-start; the plot is rebuilt on resume.
# Usage: train_resume.sh ILLADA_BIN SOURCE_DIR (run by ctest as cli.train_resume)
set -euo pipefail
bin="$1"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OMP_WAIT_POLICY=passive
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "train_resume: $*" >&2; exit 1; }
cd "$tmp"

source "$2/tests/cli/lib/tiny_corpus.sh"
tiny_corpus "$bin" 7 600
args=(--model-config model.json --tokenizer tok --data data --steps 240 --seq-len 64 --batch-size 6
      --micro-batches 2 --lr 2e-3 --warmup 20 --decay-start 200 --plateau-window 20 --plateau-threshold 0.1 --seed 5 --eval-every 40
      --checkpoint-every 15 --keep-checkpoints 2 --no-progress --save-dtype f32)

"$bin" train "${args[@]}" --out ref > /dev/null

for attempt in 1 2; do
  rm -rf run
  "$bin" train "${args[@]}" --out run > /dev/null 2>&1 &
  pid=$!
  # Wait for the first checkpoint, then kill at a random moment of the rest of the run.
  for _ in $(seq 1 400); do
    ls run/checkpoints/step-* > /dev/null 2>&1 && break
    sleep 0.01
  done
  sleep "$(awk -v r=$RANDOM 'BEGIN { print r / 32768 * 1.5 }')"
  kill -9 "$pid" 2> /dev/null && killed=1 || killed=0
  wait "$pid" 2> /dev/null || true
  [ "$killed" = 1 ] && break
done
ckpt="$(ls -d run/checkpoints/step-* 2> /dev/null | tail -1)"
echo "train_resume: killed (attempt $attempt, killed=$killed) with newest checkpoint ${ckpt:-none}"
"$bin" train "${args[@]}" --out run --resume > /dev/null 2> resume.err
grep -q "resuming from" resume.err || [ -z "$ckpt" ] || fail "did not resume: $(cat resume.err)"

python3 - <<'PY' || fail "resumed run differs from the uninterrupted one"
import json
def load(p):
    out = {}
    for l in open(p):
        j = json.loads(l)
        key = (j["step"], "eval" if "eval_loss" in j else "decay" if "decay_start" in j else "train")
        assert key not in out, f"{p}: duplicate line for {key}"
        out[key] = {k: j[k] for k in ("loss", "grad_norm", "lr", "eval_loss", "decay_start", "decay_steps") if k in j}
    return out
a, b = load("ref/metrics.jsonl"), load("run/metrics.jsonl")
assert a.keys() == b.keys(), sorted(set(a) ^ set(b))
bad = [k for k in a if a[k] != b[k]]
assert not bad, [(k, a[k], b[k]) for k in sorted(bad)[:3]]
decay = [v["decay_start"] for k, v in a.items() if k[1] == "decay"]
assert len(decay) == 1 and 20 < decay[0] < 200, decay
print(f"train_resume: {len(a)} metric lines identical (plateau decay from step {decay[0]})")
PY
cmp ref/final/model.safetensors run/final/model.safetensors || fail "final weights differ"
cmp ref/plot.svg <(sed "s|illada train: run|illada train: ref|" run/plot.svg) || fail "plot differs after resume"
ls run/checkpoints | grep -q '^\.tmp' && fail "a temporary checkpoint was left behind"
[ "$(ls -d run/checkpoints/step-* | wc -l)" = 2 ] || fail "keep-checkpoints 2 not honoured: $(ls run/checkpoints)"
echo "train_resume: ok"
