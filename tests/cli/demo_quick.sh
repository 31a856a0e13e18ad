#!/usr/bin/env bash
# `illada demo --quick`: the whole pipeline (data, tokenizer, pre-training, SFT, open questions,
# multiple choice by both rules) runs, writes its report directory, and the SFT model loads in
# `illada generate`. Checks the plumbing, not the accuracy (the quick model is tiny).
# Usage: demo_quick.sh ILLADA_BIN SOURCE_DIR (run by ctest as cli.demo_quick)
set -euo pipefail
bin="$1"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" OMP_WAIT_POLICY=passive
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
fail() { echo "demo_quick: $*" >&2; exit 1; }

"$bin" demo --quick --seed 3 --out "$tmp/out" > "$tmp/stdout" 2> "$tmp/stderr" ||
  fail "demo failed: $(tail -20 "$tmp/stderr")"
for f in report.md summary.json metrics.jsonl curves.svg data/corpus.txt data/sft.jsonl data/open.jsonl \
         data/mc.jsonl tokenizer/tokenizer.json runs/pretrain/metrics.jsonl runs/sft/metrics.jsonl; do
  [ -s "$tmp/out/$f" ] || fail "$f missing or empty"
done
for d in pretrained sft; do
  for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
    [ -f "$tmp/out/$d/$f" ] || fail "$d/$f missing"
  done
done
grep -q "^== \[7/7\]" "$tmp/stderr" || fail "stage headers missing: $(head -5 "$tmp/stderr")"
grep -q "MC confidence" "$tmp/stdout" || fail "summary table missing: $(cat "$tmp/stdout")"
grep -q "| \*\*all\*\* |" "$tmp/out/report.md" || fail "report.md has no accuracy table"
grep -q "<polyline" "$tmp/out/curves.svg" || fail "curves.svg has no curve"
python3 - "$tmp/out" <<'PY' || fail "summary.json: $(head -c 600 "$tmp/out/summary.json")"
import json, sys
d = sys.argv[1]
s = json.load(open(f"{d}/summary.json"))
for k in ("open", "mc_confidence", "mc_likelihood"):
    r = s[k]
    assert r["n"] > 0 and 0 <= r["accuracy"] <= 1 and "chance" in r and r["by_kind"], (k, r)
assert abs(s["mc_confidence"]["chance"] - 0.25) < 1e-9, s["mc_confidence"]["chance"]
assert s["pretrain"]["last_eval_loss"] < s["pretrain"]["first_eval_loss"], s["pretrain"]
lines = [json.loads(l) for l in open(f"{d}/metrics.jsonl")]
assert {l.get("eval") for l in lines} >= {"open", "mc_confidence", "mc_likelihood"}, lines
# Task files are in illada's format: every line parses, MC golds point at a choice.
for l in open(f"{d}/data/mc.jsonl").readlines()[1:]:
    e = json.loads(l)
    assert 0 <= e["gold"] < len(e["choices"]) and len(set(e["choices"])) == len(e["choices"]), e
PY
# What the quick model is, said where its results are shown; plain numbers read right.
grep -q "^Note: --quick trains a tiny model" "$tmp/stdout" || fail "the summary does not say what the quick model is"
grep -q "^> --quick trains a tiny model" "$tmp/out/report.md" || fail "report.md does not say what the quick model is"
grep -q "12 epochs = " "$tmp/out/report.md" || fail "SFT line: $(grep -- '- SFT' "$tmp/out/report.md")"
python3 - "$tmp/out" <<'PY' || fail "samples or plot"
import re, sys
d = sys.argv[1]
report = open(f"{d}/report.md").read()
rows = report.split("## Sample generations")[1].split("## Stage times")[0].strip().splitlines()[2:]
assert rows and all(r.count("|") == 7 for r in rows), rows  # no answer breaks its table row
generated = [r.split("|")[4].strip() for r in rows]
worded = [g for g in generated if re.search(r"[A-Za-z]{2}|^[0-9]+$", g)]
assert len(worded) >= len(generated) // 2, generated  # words or numbers, not "?? ???"
svg = open(f"{d}/curves.svg").read()
assert "1500 steps</text>" in svg, re.findall(r">[^<]*steps</text>", svg)  # the last step, not 1499
PY
# Same seed, same data.
"$bin" demo --quick --seed 3 --out "$tmp/again" --steps 2 --sft-epochs 1 --no-progress > /dev/null 2>&1 ||
  fail "second demo run failed"
grep -q -- "- SFT: 1 epoch = " "$tmp/again/report.md" || fail "1 epoch: $(grep -- '- SFT' "$tmp/again/report.md")"
grep -q -- "- pre-training: 2 steps x" "$tmp/again/report.md" || fail "steps: $(grep -- '- pre-training' "$tmp/again/report.md")"
cmp -s "$tmp/out/data/corpus.txt" "$tmp/again/data/corpus.txt" || fail "corpus differs for the same seed"
cmp -s "$tmp/out/data/mc.jsonl" "$tmp/again/data/mc.jsonl" || fail "mc.jsonl differs for the same seed"

prompt="$(python3 -c "import json, sys; print(json.loads(open(sys.argv[1]).readlines()[1])['prompt'])" "$tmp/out/data/open.jsonl")"
out="$("$bin" generate --model "$tmp/out/sft" --chat --prompt "$prompt" --variable-length --block-length 8 \
  --max-length 16 --steps 16 2> "$tmp/gen.err")" ||
  fail "generate on the SFT model failed: $(cat "$tmp/gen.err")"
echo "demo_quick: ok"
