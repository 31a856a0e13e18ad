#!/usr/bin/env bash
# End-to-end training: train a tokenizer on generated text, prepare data (plain and SFT),
# pre-train a tiny model (d 64, 2 layers) and check the held-out loss drops well below its
# step-0 value; the final model loads in `illada generate`; bad input gives clear errors.
# Usage: train_e2e.sh ILLADA_BIN SOURCE_DIR (run by ctest as cli.train_e2e)
set -euo pipefail
bin="$1"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OMP_WAIT_POLICY=passive
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "train_e2e: $*" >&2; exit 1; }
cd "$tmp"

python3 - <<'PY'
import json, random
random.seed(1)
names = ["the cat", "a dog", "my bird", "the fox", "a horse", "the cow"]
verbs = ["sees", "likes", "chases", "finds", "follows"]
objs = ["the ball", "a stick", "the tree", "a house", "the river", "some food"]
paras = []
while sum(len(p) for p in paras) < 50000:
    s = [f"{random.choice(names)} {random.choice(verbs)} {random.choice(objs)}." for _ in range(random.randint(2, 5))]
    paras.append(" ".join(s).capitalize())
open("corpus.txt", "w").write("\n\n".join(paras) + "\n")
with open("sft.jsonl", "w") as f:
    for i in range(200):
        a, b = random.randint(0, 9), random.randint(0, 9)
        if i % 2:
            f.write(json.dumps({"prompt": f"what is {a} plus {b}?", "response": f"{a + b}."}) + "\n")
        else:
            f.write(json.dumps({"messages": [{"role": "user", "content": f"what is {a} plus {b}?"},
                                             {"role": "assistant", "content": f"{a + b}."}]}) + "\n")
json.dump({"d_model": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "mlp_hidden_size": 128,
           "max_sequence_length": 256, "weight_tying": True}, open("model.json", "w"))
PY

"$bin" tokenizer train --input corpus.txt --vocab-size 300 --out tok --quiet > /dev/null
"$bin" data prepare --tokenizer tok --input corpus.txt --out data > prep.json
grep -q '"sft": false' prep.json || fail "prepare: $(cat prep.json)"
"$bin" data prepare --tokenizer tok --input sft.jsonl --out sftdata --sft --shard-tokens 1000 > sftprep.json
grep -q '"documents": 200' sftprep.json || fail "sft prepare: $(cat sftprep.json)"
[ -f sftdata/shard-00001.tok ] || fail "--shard-tokens did not cut shards"

# Pre-training through a config file, one flag overriding it.
cat > run.json <<'JSON'
{"model_config": "model.json", "tokenizer": "tok", "data": "data", "out": "run",
 "steps": 100, "seq_len": 64, "batch_size": 8, "lr": 3e-3, "warmup": 10, "seed": 1,
 "eval_every": 100, "checkpoint_every": 100, "progress": false}
JSON
"$bin" train --config run.json --steps 300 > result.json
python3 - <<'PY' || fail "held-out loss did not drop: $(grep eval_loss run/metrics.jsonl)"
import json, math
ev = [json.loads(l) for l in open("run/metrics.jsonl") if "eval_loss" in l]
assert [e["step"] for e in ev] == [0, 100, 200, 300], ev
first, last = ev[0]["eval_loss"], ev[-1]["eval_loss"]
print(f"train_e2e: held-out loss {first:.3f} at step 0 -> {last:.3f} at step 300")
# Initial loss about log V (the official init); learning takes it well below.
assert last < 0.7 * first and last < math.log(300) - 1, (first, last)
PY
python3 - <<'PY' || fail "plot.svg: $(head -c 300 run/plot.svg)"
import re, xml.dom.minidom
svg = open("run/plot.svg").read()
assert svg.startswith("<svg"), svg[:50]
xml.dom.minidom.parseString(svg)  # well-formed XML
def points(cls):
    m = re.search(r'<polyline class="%s"[^>]*points="([^"]*)"' % cls, svg)
    return len(m.group(1).split()) if m else -1
# 300 steps: one point per step for loss and LR, one per evaluation (0, 100, 200, 300).
assert (points("train-loss"), points("lr"), points("eval-loss")) == (300, 300, 4), \
    (points("train-loss"), points("lr"), points("eval-loss"))
PY
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
  [ -f run/final/$f ] || fail "final/$f missing"
done
[ -f run/checkpoints/step-00000300/training_state.json ] || fail "no checkpoint at step 300"
out="$("$bin" generate --model run/final --prompt "The cat" --gen-length 16 --block-length 16 --steps 16 2>/dev/null)"
[ -n "$out" ] || fail "generate on final produced nothing"

# SFT from the pre-trained model, by epochs, with the prompt-clean ablation.
"$bin" train --init run/final --tokenizer tok --data sftdata --out sft --epochs 2 --seq-len 32 \
  --batch-size 4 --lr 1e-3 --seed 2 --sft --prompt-clean --no-progress > sft.json
python3 -c "
import json, math; r = json.load(open('sft.json')); d = json.load(open('sftdata/dataset.json'))
held = math.floor(0.05 * d['n_tokens']); held = held if held >= 32 else 0
assert r['steps'] == math.ceil(2 * (d['n_tokens'] - held) / (4 * 32)), (r, d['n_tokens'])
" || fail "sft epochs: $(cat sft.json)"
[ -f sft/final/model.safetensors ] || fail "sft final model missing"

# Bad input: clear errors, exit status 1.
echo '{"seq_len": 64, "bogus_key": 1}' > bad.json
if "$bin" train --config bad.json 2> err; then fail "unknown key accepted"; fi
grep -q "unknown key 'bogus_key'" err || fail "unknown key message: $(cat err)"
cp -r data broken
printf 'garbage' | dd of=broken/shard-00000.tok bs=1 seek=50 conv=notrunc status=none
if "$bin" train --config run.json --data broken --out r2 2> err; then fail "corrupt shard accepted"; fi
grep -q "shard-00000.tok: checksum mismatch" err || fail "corrupt shard message: $(cat err)"
printf '{"text": "ok"}\n{"text": \n' > bad.jsonl
if "$bin" data prepare --tokenizer tok --input bad.jsonl --out d2 2> err; then fail "bad JSONL accepted"; fi
grep -q "bad.jsonl:2: malformed JSON" err || fail "bad JSONL message: $(cat err)"
if "$bin" train --config run.json --seq-len 32 --resume 2> err; then fail "mismatched checkpoint accepted"; fi
grep -q "checkpoint does not match this run: seq_len is 64 in the checkpoint but 32 now" err ||
  fail "mismatch message: $(cat err)"
if "$bin" train --config run.json --out nan --lr 1e30 --warmup 0 --grad-clip 0 --checkpoint-every 1 2> err; then
  fail "non-finite loss not detected"
fi
grep -q "training stopped: .* at step 1" err || fail "NaN message: $(cat err)"
# Step 1 ran on the weights of checkpoint step-00000001: set aside, not called good.
[ -f nan/checkpoints/step-00000001.diverged/training_state.json ] || fail "diverged checkpoint not set aside"
grep -q "no good checkpoint" err || fail "NaN message names a good checkpoint: $(cat err)"
echo "train_e2e: ok"
