#!/usr/bin/env bash
# Property test of the argument parsing of generate, score, eval and train: random flag sets
# with random values (valid, at the edges of their ranges, NaN, infinities, junk, empty,
# repeated). Whatever the values: no crash (signal, abort, internal check), no hang, a
# non-zero exit always with an "illada: error" message, and an exit status 0 only with a
# complete result that holds no NaN. Seeded (FUZZ_SEED, FUZZ_CASES) so a failure reproduces.
# Usage: fuzz_args.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
export OMP_NUM_THREADS=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
source "$src/tests/cli/lib/text_model.sh"
text_model "$bin" m
source "$src/tests/cli/lib/tiny_corpus.sh"
tiny_corpus "$bin" 2 60
printf '%s\n' '{"context": "The cat", "choices": ["sat", "ran"], "gold": 0}' \
  '{"prompt": "A dog", "reference": "ran", "match": "exact"}' > task.jsonl

python3 - "$bin" "${FUZZ_SEED:-13}" "${FUZZ_CASES:-150}" <<'PY'
import json, math, os, random, subprocess, sys

bin_, seed, cases = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)
INTS = ["0", "1", "2", "3", "7", "8", "16", "17", "32", "64", "100", "256", "-1", "-100", "1e3", "2.5", "0x10",
        "1000000000", "9223372036854775807", "99999999999999999999", "", "abc", " 8", "+4"]
FLOATS = ["0", "0.0", "-0.0", "0.5", "1", "2", "1e-300", "1e300", "1e400", "-1", "nan", "NaN", "inf", "-inf",
          "", "x", "0.9", "1.5", "3e-4"]
SEEDS = ["0", "1", "42", "18446744073709551615", "18446744073709551616", "-1", "seed"]
TEXT = ["", "The cat", "é\u00e9\u4e2d", "<|mdm_mask|>", "a" * 2000, "--prompt", "\x01\x02"]

INTS_OK = ["1", "2", "3", "4", "8", "16", "32", "64"]
FLOATS_OK = ["0", "0.1", "0.5", "0.9", "1", "2"]

def choose(pool):
    # Often a plausible value, so that many command lines run to a result and the result is checked.
    if pool is INTS and rng.random() < 0.6:
        return rng.choice(INTS_OK)
    if pool is FLOATS:
        r = rng.random()
        if r < 0.5:
            return rng.choice(FLOATS_OK)
        if r < 0.75:  # the values that used to slip through as results
            return rng.choice(["nan", "NaN", "inf", "-inf", "1e400", "-0.5", "0"])
    return rng.choice(pool)

SPECS = {
    "generate": {
        "base": ["--model", "m", "--format", "json"],
        "flags": {"--gen-length": INTS, "--max-length": INTS, "--block-length": INTS, "--steps": INTS,
                  "--temperature": FLOATS, "--cfg-scale": FLOATS, "--threshold": FLOATS, "--factor": FLOATS,
                  "--seed": SEEDS, "--remasking": ["low_confidence", "random", "margin", "entropy", "x", ""],
                  "--cache": ["none", "prefix", "dual", "both"], "--threads": INTS, "--dtype": ["f32", "bf16", "f16"],
                  "--prompt": TEXT, "--prompt-ids": ["1,2,3", "", "1,,2", "999999", "-1", "1;2", "3,4,5"],
                  "--system": TEXT},
        "switches": ["--variable-length", "--chat", "--logits-eos-inf", "--confidence-eos-eot-inf",
                     "--allow-mask-prediction", "--quiet"],
        "need": [["--prompt", "The cat"]],
    },
    "score": {
        "base": ["--model", "m", "--format", "json"],
        "flags": {"--method": ["likelihood", "confidence", "both"], "--mc-num": INTS, "--mc-batch-size": INTS,
                  "--batch-size": INTS, "--cfg-scale": FLOATS, "--seed": SEEDS, "--threads": INTS,
                  "--prompt": TEXT, "--prompt-ids": ["1,2", "", "x"], "--choice-ids": ["3;4,5", "3;", ";", "1,2"],
                  "--dtype": ["f32", "bf16", "x"]},
        "switches": ["--normalize", "--chat", "--quiet"],
        "need": [["--prompt", "The cat"], ["--choices", "sat", "ran"]],
    },
    "eval": {
        "base": ["--model", "m", "--task", "task.jsonl"],
        "flags": {"--method": ["likelihood", "confidence", "x"], "--mc-num": INTS, "--mc-batch-size": INTS,
                  "--gen-length": INTS, "--max-length": INTS, "--block-length": INTS, "--steps": INTS,
                  "--temperature": FLOATS, "--cfg-scale": FLOATS, "--threshold": FLOATS, "--limit": INTS,
                  "--seed": SEEDS, "--threads": INTS, "--on-error": ["skip", "fail", "x"],
                  "--cache": ["none", "prefix", "dual", "x"], "--task": ["task.jsonl", "/dev/zero", "nowhere", "."]},
        "switches": ["--variable-length", "--chat", "--normalize", "--quiet"],
        "need": [],
    },
    "train": {
        "base": ["--model-config", "model.json", "--tokenizer", "tok", "--data", "data", "--no-progress"],
        "flags": {"--steps": ["1", "2", "3", "0", "-1", "x", ""], "--epochs": FLOATS, "--seq-len": INTS,
                  "--batch-size": INTS, "--micro-batches": INTS, "--lr": FLOATS, "--min-lr": FLOATS,
                  "--warmup": INTS, "--split-prob": FLOATS, "--weight-decay": FLOATS, "--beta1": FLOATS,
                  "--beta2": FLOATS, "--adam-eps": FLOATS, "--grad-clip": FLOATS, "--seed": SEEDS,
                  "--eval-fraction": FLOATS, "--eval-batches": INTS, "--checkpoint-every": INTS,
                  "--decay-start": INTS, "--plateau-window": INTS, "--plateau-threshold": FLOATS,
                  "--decay-fraction": FLOATS, "--schedule": ["pretrain", "sft", "x"], "--threads": INTS,
                  "--dtype": ["bf16", "f32", "x"]},
        "switches": ["--sft", "--split-documents", "--resume", "--force"],
        "need": [["--steps", "2"], ["--seq-len", "32"], ["--batch-size", "2"]],
    },
}

def no_nan(text):
    """The JSON of a result: no NaN/Infinity token and no null (what a NaN is written as)."""
    def bad(c):
        raise ValueError(f"non-finite {c} in the output")
    def walk(v):
        if v is None:
            raise ValueError("null (a NaN?) in the output")
        for x in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else []):
            walk(x)
    j = json.loads(text, parse_constant=bad)
    walk(j)
    return j

failures = []
succeeded = {c: 0 for c in SPECS}
for cmd, spec in SPECS.items():
    for case in range(cases):
        args = list(spec["base"])
        if rng.random() < 0.8:
            for need in spec["need"]:
                args += need
        for flag in rng.sample(sorted(spec["flags"]), rng.randint(1, 6)):
            for _ in range(2 if rng.random() < 0.1 else 1):  # sometimes repeated
                args += [flag, choose(spec["flags"][flag])]
        for sw in spec["switches"]:
            if rng.random() < 0.2:
                args.append(sw)
        if cmd == "train":
            args += ["--out", f"run_{case}"]
            if rng.random() < 0.3:  # a length the data and model can serve, so some runs train
                args += ["--seq-len", "32", "--batch-size", "2", "--steps", "2", "--lr", "1e-3"]
        cmdline = [bin_] + cmd.split() + args
        try:
            p = subprocess.run(cmdline, capture_output=True, timeout=120)
        except subprocess.TimeoutExpired:
            failures.append(f"hang: {cmdline}")
            continue
        out, err = p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")
        what = f"{cmdline}\n  exit {p.returncode}\n  stdout {out[:300]!r}\n  stderr {err[-600:]!r}"
        if p.returncode < 0 or p.returncode >= 128 or "internal check failed" in err or "terminate called" in err:
            failures.append("crash: " + what)
        elif p.returncode != 0:
            if "illada: error" not in err and "Run with --help" not in err:
                failures.append("unclear error: " + what)
        else:
            try:
                if cmd == "train":
                    j = no_nan(out.strip().splitlines()[-1])
                    assert j["steps"] > 0 and math.isfinite(j["last_eval_loss"]), j
                    for line in open(f"run_{case}/metrics.jsonl"):
                        no_nan(line)
                    no_nan(open(f"run_{case}/run_config.json").read())  # the options it ran with
                elif cmd == "generate":
                    j = no_nan(out)
                    rs = j["results"] if "results" in j else [j]
                    for r in rs:
                        assert "ids" in r and "nfe" in r and r["nfe"] > 0, r
                        assert r["ids"] or r.get("stopped_at_eos"), r
                elif cmd == "score":
                    j = no_nan(out)
                    assert len(j["scores"]) >= 1 and 0 <= j["best"] < len(j["scores"]), j
                else:
                    j = no_nan(out)
                    assert j["n"] > 0 and 0 <= j["accuracy"] <= 1, j
                succeeded[cmd] += 1
            except Exception as e:  # noqa: BLE001 (any failure of the checks above)
                failures.append(f"bad result ({e}): " + what)
if failures:
    print(f"fuzz_args: {len(failures)} failures (FUZZ_SEED={seed}):", file=sys.stderr)
    for f in failures[:15]:
        print("  " + f, file=sys.stderr)
    sys.exit(1)
print(f"fuzz_args: {cases * len(SPECS)} command lines, no crash, no hang, no NaN or empty result (seed {seed}); "
      f"ran to a result: {succeeded}")
if min(succeeded.values()) == 0:
    sys.exit("fuzz_args: some command never ran to a result: the valid values are too rare to test anything")
PY
