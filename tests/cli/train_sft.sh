#!/usr/bin/env bash
# SFT end to end: pre-train a tiny model (d 64, 2 layers) briefly on text that mentions some
# names, SFT it on "name: X" -> "hello X" chat examples (whole-window masking, the iLLaDA
# default), then ask it with `illada generate --chat --variable-length` about names held out
# of the SFT set: a clear majority of the answers must have the trained form "hello WORD" and
# stop at EOS. (Copying the held-out name exactly is reported but not required: a model this
# small, trained for seconds, learns the format and the stop long before it learns to copy.)
# Usage: train_sft.sh ILLADA_BIN SOURCE_DIR (run by ctest as cli.train_sft)
set -euo pipefail
bin="$1"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" OMP_WAIT_POLICY=passive
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "train_sft: $*" >&2; exit 1; }
cd "$tmp"

python3 - <<'PY'
import json, random
random.seed(3)
syl = ["ka", "ro", "mi", "te", "su", "no", "ba", "li"]
names = [a + b for a in syl for b in syl if a != b]  # 56 names
random.shuffle(names)
held, train = names[:12], names[12:]
words = ["went", "to", "the", "market", "and", "saw", "a", "friend", "called", "who", "said", "hello"]
paras = []
while sum(len(p) for p in paras) < 30000:
    paras.append(" ".join(f"{random.choice(names)} {' '.join(random.sample(words, 4))}."
                          for _ in range(random.randint(2, 4))))
open("corpus.txt", "w").write("\n\n".join(paras) + "\n")
with open("sft.jsonl", "w") as f:
    for _ in range(20):
        for n in train:
            f.write(json.dumps({"prompt": f"name: {n}", "response": f"hello {n}"}) + "\n")
open("held.txt", "w").write("\n".join(held) + "\n")
# The tokenizer sees the SFT text too, so " hello" and the names are single tokens.
open("tokcorpus.txt", "w").write(open("corpus.txt").read() +
                                 "\n".join(f"name: {n} hello {n}" for n in names) + "\n")
json.dump({"d_model": 64, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "mlp_hidden_size": 128,
           "max_sequence_length": 256, "weight_tying": True}, open("model.json", "w"))
PY

"$bin" tokenizer train --input tokcorpus.txt --vocab-size 400 --out tok --quiet > /dev/null
"$bin" data prepare --tokenizer tok --input corpus.txt --out data > /dev/null
"$bin" data prepare --tokenizer tok --input sft.jsonl --out sftdata --sft > /dev/null
"$bin" train --model-config model.json --tokenizer tok --data data --out pre --steps 150 --seq-len 64 \
  --batch-size 8 --lr 3e-3 --warmup 10 --seed 1 --no-progress > /dev/null
"$bin" train --init pre/final --tokenizer tok --data sftdata --out sft --steps 600 --seq-len 64 \
  --batch-size 8 --lr 2e-3 --warmup 20 --seed 2 --sft --no-progress > sft.json
[ -f sft/plot.svg ] || fail "no plot.svg"

prompts=()
while read -r n; do prompts+=(--prompt "name: $n"); done < held.txt
"$bin" generate --model sft/final --chat --variable-length --block-length 8 --steps 8 --max-length 32 \
  "${prompts[@]}" --format json > gen.json
python3 - <<'PY' || fail "SFT answers are not in the trained format: $(cat gen.json)"
import json, re
res = json.load(open("gen.json"))["results"]
held = open("held.txt").read().split()
assert len(res) == len(held), (len(res), len(held))
ok = [r["stopped_at_eos"] and re.fullmatch(r"hello [a-z]+", r["text"].strip()) is not None for r in res]
exact = sum(r["text"].strip() == f"hello {n}" for r, n in zip(res, held))
print(f"train_sft: {sum(ok)}/{len(res)} held-out answers are 'hello WORD' + EOS "
      f"({exact} copy the name exactly); e.g. {res[0]['text']!r}")
assert sum(ok) >= 0.75 * len(res), [r["text"] for r in res]
PY
echo "train_sft: ok"
