#!/usr/bin/env python3
"""Quality of quantised models against their bf16 original (docs/results.md, "Quantised models").

    python3 tools/results/quant_quality.py --illada build/illada --runs repro_out --seeds 1 2 3 \
        [--types q8_0,q6_k,q4_k_m,q4_0] [--random-config bench/configs/small.json] [--out FILE.md]

For each seed's demo instruct model (RUNS/seed_S/base/sft, made by scripts/reproduce.sh) and
each type: `illada quantize` writes a GGUF; then, with bf16 compute for both,
  - logits: 16 held-out pre-training windows of 64 tokens (the last 5% of the demo's token
    stream, which training never saw), every other position masked (a fixed pattern); at the
    masked positions, the KL divergence KL(bf16 || quantised) in nats and how often the two
    models' most likely tokens agree (top-1);
  - accuracy: the demo's held-out open questions (variable-length generation, its settings) and
    multiple choice (confidence rule), by `illada eval`.
With --random-config, the same logits comparison on random weights of that config (`illada
init`, seed 1) over random token ids: matrices wide enough for the k-quants' 256-value blocks
(the demo's d_model 128 is not; llama.cpp's quantiser then falls back, which the report lists).
Prints a Markdown section; --out also writes it to a file.
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np

HEADER = 40  # token shard header bytes (src/io/token_shards.h)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout


def tokens_of_shard(path):
    data = open(path, "rb").read()
    n = struct.unpack_from("<Q", data, 16)[0]
    return np.frombuffer(data, dtype="<u4", count=n, offset=HEADER).astype(np.int64)


def logits(bin_, model, ids, vocab, work):
    out = os.path.join(work, "logits.f32")
    run([bin_, "logits", "--model", model, "--dtype", "bf16", "--ids", ",".join(map(str, ids)), "--out", out])
    return np.fromfile(out, dtype="<f4").reshape(len(ids), vocab)


def log_softmax(x):
    x = x.astype(np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def compare(bin_, ref_model, q_model, windows, mask_id, vocab, work):
    """Mean KL(ref || q) over masked positions and top-1 agreement, over all windows."""
    kls, agree, n = 0.0, 0, 0
    for w in windows:
        ids = [mask_id if i % 2 == 1 else int(t) for i, t in enumerate(w)]
        masked = [i for i in range(len(ids)) if i % 2 == 1]
        lp = log_softmax(logits(bin_, ref_model, ids, vocab, work)[masked])
        lq = log_softmax(logits(bin_, q_model, ids, vocab, work)[masked])
        kls += float((np.exp(lp) * (lp - lq)).sum())
        agree += int((lp.argmax(-1) == lq.argmax(-1)).sum())
        n += len(masked)
    return kls / n, agree / n


def tensor_types(bin_, gguf):
    info = json.loads(run([bin_, "info", "--model", gguf, "--format", "json"]))
    types = info.get("tensor_types") or {}
    return ", ".join(f"{k} {v}" for k, v in sorted(types.items()))


def quantize(bin_, model, t, out):
    if not os.path.exists(out):
        run([bin_, "quantize", "--model", model, "--type", t, "--out", out, "--quiet"])
    return out


def eval_acc(bin_, model, task, extra):
    s = json.loads(run([bin_, "eval", "--model", model, "--task", task, "--chat", "--quiet", *extra]))
    return s["accuracy"]


def mean_se(xs):
    xs = np.array(xs, dtype=np.float64)
    if len(xs) < 2:
        return f"{xs.mean():.4g}"
    return f"{xs.mean():.4g} ± {xs.std(ddof=1) / np.sqrt(len(xs)):.2g}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--illada", required=True)
    ap.add_argument("--runs", required=True, help="scripts/reproduce.sh's output directory")
    ap.add_argument("--seeds", nargs="+", default=["1"])
    ap.add_argument("--types", default="q8_0,q6_k,q4_k_m,q4_0")
    ap.add_argument("--random-config", default="")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    bin_ = os.path.abspath(a.illada)
    types = a.types.split(",")
    work = tempfile.mkdtemp(prefix="quant_quality_")
    rows = {t: {"kl": [], "top1": [], "open": [], "mc": []} for t in ["bf16"] + types}
    fallbacks = {}
    open_args = ["--variable-length", "--gen-length", "32", "--block-length", "8", "--steps", "8"]
    for s in a.seeds:
        base = os.path.join(a.runs, f"seed_{s}", "base")
        sft = os.path.join(base, "sft")
        cfg = json.load(open(os.path.join(sft, "config.json")))
        vocab, mask_id = cfg["embedding_size"], cfg["mask_token_id"]
        toks = tokens_of_shard(os.path.join(base, "runs", "data_pretrain", "shard-00000.tok"))
        held = toks[int(len(toks) * 0.95):]
        windows = [held[i * 64:(i + 1) * 64] for i in range(min(16, len(held) // 64))]
        data = os.path.join(base, "data")
        extra_open = open_args + ["--seed", s]
        rows["bf16"]["open"].append(eval_acc(bin_, sft, os.path.join(data, "open.jsonl"), extra_open))
        rows["bf16"]["mc"].append(eval_acc(bin_, sft, os.path.join(data, "mc.jsonl"), ["--method", "confidence"]))
        for t in types:
            g = quantize(bin_, sft, t, os.path.join(work, f"seed{s}_{t}.gguf"))
            fallbacks.setdefault(t, tensor_types(bin_, g))
            kl, top1 = compare(bin_, sft, g, windows, mask_id, vocab, work)
            rows[t]["kl"].append(kl)
            rows[t]["top1"].append(top1)
            rows[t]["open"].append(eval_acc(bin_, g, os.path.join(data, "open.jsonl"), extra_open))
            rows[t]["mc"].append(eval_acc(bin_, g, os.path.join(data, "mc.jsonl"), ["--method", "confidence"]))
        print(f"seed {s} done", file=sys.stderr)
    lines = [f"Demo instruct models (seeds {', '.join(a.seeds)}; mean ± standard error over seeds): "
             "KL(bf16 || type) and top-1 agreement at the masked positions of 16 held-out windows of 64 "
             "tokens (every other position masked); held-out open questions (exact match) and multiple "
             "choice (confidence), bf16 compute throughout.", "",
             "| weights | KL nats | top-1 agreement % | open accuracy % | MC confidence % |", "|---|---|---|---|---|"]
    for t in ["bf16"] + types:
        r = rows[t]
        kl = mean_se(r["kl"]) if r["kl"] else "0 (reference)"
        top1 = mean_se([100 * x for x in r["top1"]]) if r["top1"] else "100 (reference)"
        lines.append(f"| {t} | {kl} | {top1} | {mean_se([100 * x for x in r['open']])} | "
                     f"{mean_se([100 * x for x in r['mc']])} |")
    lines += ["", "Tensor types in the demo model's files (d_model 128 and MLP 384 are not whole 256-value "
              "blocks, so llama.cpp's rules put the k-quant types' matrices in other types):", ""]
    lines += [f"- {t}: {fallbacks[t]} tensors" for t in types]
    if a.random_config:
        rnd = os.path.join(work, "random")
        run([bin_, "init", "--config", a.random_config, "--out", rnd, "--dtype", "bf16", "--seed", "1"])
        cfg = json.load(open(os.path.join(rnd, "config.json")))
        vocab, mask_id = cfg["embedding_size"], cfg["mask_token_id"]
        rng = np.random.default_rng(1)
        windows = [rng.integers(0, min(vocab, mask_id), 64) for _ in range(8)]
        lines += ["", f"Random weights of {os.path.basename(a.random_config)} (d_model {cfg['d_model']}, "
                  f"{cfg['n_layers']} layers, vocab {vocab}; `illada init` seed 1), 8 windows of 64 random "
                  "ids, every other position masked:", "",
                  "| weights | KL nats | top-1 agreement % | tensor types |", "|---|---|---|---|"]
        for t in types:
            g = quantize(bin_, rnd, t, os.path.join(work, f"random_{t}.gguf"))
            kl, top1 = compare(bin_, rnd, g, windows, mask_id, vocab, work)
            lines.append(f"| {t} | {kl:.4g} | {100 * top1:.1f} | {tensor_types(bin_, g)} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        open(a.out, "w").write(text)


if __name__ == "__main__":
    main()
