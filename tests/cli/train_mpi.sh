#!/usr/bin/env bash
# Data-parallel training with MPI: `mpirun -np 2 illada train` with 1 micro-batch per rank takes
# the same steps as one process with 2 micro-batches (same windows, same masks, gradients
# summed): losses, gradient norms and held-out losses agree to floating-point summation order,
# and only rank 0 writes (one metrics line per step, one final model). Also: a launcher with
# 2 processes and a batch the ranks cannot share is refused with a clear error.
# Usage: train_mpi.sh ILLADA_BIN SOURCE_DIR (run by ctest as cli.train_mpi)
set -euo pipefail
bin="$1"
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "train_mpi: $*" >&2; exit 1; }
cd "$tmp"
command -v mpirun > /dev/null || fail "mpirun not found (scripts/install_deps.sh installs openmpi-bin)"
"$bin" --version | grep -q "mpi" || fail "this illada was built without MPI: $("$bin" --version)"
# Containers: allow root, no CPU binding, no cross-memory-attach single copy.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
mpi=(mpirun -np 2 --oversubscribe --bind-to none)

source "$2/tests/cli/lib/tiny_corpus.sh"
tiny_corpus "$bin" 3 400
args=(--model-config model.json --tokenizer tok --data data --steps 12 --seq-len 64
      --lr 2e-3 --warmup 2 --seed 4 --eval-every 4 --dtype f32 --save-dtype f32)

"$bin" train "${args[@]}" --batch-size 8 --micro-batches 2 --out single --no-progress > /dev/null 2> single.err ||
  fail "single-process run failed: $(cat single.err)"
"${mpi[@]}" "$bin" train "${args[@]}" --batch-size 8 --micro-batches 1 --out dp > dp.out 2> dp.err ||
  fail "mpirun -np 2 failed: $(tail -20 dp.err)"
grep -q "data parallel over 2 processes (mpi)" dp.err || fail "no data-parallel banner: $(head -5 dp.err)"
[ -f dp/final/model.safetensors ] || fail "no final model"

python3 - <<'PY' || fail "data-parallel run differs from the single-process one"
import json
def load(p):
    out = {}
    for l in open(p):
        j = json.loads(l)
        key = (j["step"], "eval" if "eval_loss" in j else "train")
        assert key not in out, f"{p}: duplicate line for {key} (a second rank wrote metrics?)"
        out[key] = j
    return out
a, b = load("single/metrics.jsonl"), load("dp/metrics.jsonl")
assert a.keys() == b.keys(), (sorted(a), sorted(b))
for k in sorted(a):
    for f in ("loss", "grad_norm", "eval_loss", "tokens"):
        if f in a[k]:
            x, y = a[k][f], b[k][f]
            assert abs(x - y) <= 1e-4 * max(1.0, abs(x)), (k, f, x, y)
# Training moved the model (the comparison is not between two untouched models).
assert a[(11, "train")]["loss"] != a[(0, "train")]["loss"]
print("train_mpi: %d metric lines agree" % len(a))
PY

# 9 windows cannot be shared by 2 ranks x 3 micro-batches: refused, naming the flag.
if "${mpi[@]}" "$bin" train "${args[@]}" --batch-size 9 --micro-batches 3 --out bad > /dev/null 2> bad.err; then
  fail "an indivisible batch was accepted"
fi
grep -q "batch_size (9) must be divisible by micro_batches (3) x 2" bad.err || fail "unclear error: $(tail -5 bad.err)"
echo "train_mpi: ok"
