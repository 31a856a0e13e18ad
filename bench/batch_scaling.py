#!/usr/bin/env python3
"""How much packing requests into one forward pass can gain on this machine, without HTTP.

Runs `illada generate` with the server's default decoder (variable length, dual cache,
threshold 0.9, block 32, temperature 0) on 1 and on N prompts at once (one packed pass per step,
as the server's batches), alternating, and reports tokens/s and the ratio. With --products it
reruns each once under ONEDNN_VERBOSE=1 and sums oneDNN's execution time per product shape:
the weight products' time per generated token (fastest round) alone bounds what batching can gain
(products at N x 32 rows vs 32 rows), since every other part of a step grows with the requests.

Usage: bench/batch_scaling.py ILLADA_BIN MODEL_DIR [--batch 8] [--rounds 3] [--gen-length 256]
       [--products]
MODEL_DIR: e.g. the small config made by bench/serve_load.py (WORKDIR/small)."""
import argparse
import collections
import json
import os
import subprocess
import sys


def run(bin_, model, n, gen_length, verbose=False):
    prompts = []
    for i in range(n):
        prompts += ["--prompt", f"Question number {i + 1} about the engine and its docs"]
    env = dict(os.environ)
    if verbose:
        env["ONEDNN_VERBOSE"] = "1"
    r = subprocess.run([bin_, "generate", "--model", model, "--variable-length", "--cache", "dual",
                        "--threshold", "0.9", "--block-length", "32", "--gen-length", str(gen_length),
                        "--format", "json", "--quiet"] + prompts,
                       capture_output=True, text=True, env=env, check=True)
    lines = r.stdout.splitlines()
    products = collections.defaultdict(float)
    body = []
    for line in lines:
        if line.startswith(("onednn_verbose", "dnnl_verbose")):
            f = line.split(",")
            if ",exec," in line and f[-2].count(":") == 2:  # matmuls: MxK:KxN:MxN
                products[f[-2]] += float(f[-1])
        else:
            body.append(line)
    d = json.loads("\n".join(body))
    results = d if isinstance(d, list) else d.get("results", [d])
    tokens = sum(len(x["ids"]) for x in results)
    seconds = max(x["seconds"] for x in results)
    return tokens, seconds, products


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("bin")
    ap.add_argument("model")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--gen-length", type=int, default=256)
    ap.add_argument("--products", action="store_true")
    a = ap.parse_args()
    rates = {1: [], a.batch: []}
    for r in range(a.rounds):
        for n in (1, a.batch):
            t, s, _ = run(a.bin, a.model, n, a.gen_length)
            rates[n].append(t / s)
            print(f"round {r + 1}: {n} prompt(s): {t} tokens in {s:.2f} s, {t / s:.1f} tokens/s", flush=True)
    best1, bestn = max(rates[1]), max(rates[a.batch])
    print(f"fastest of {a.rounds}: 1 prompt {best1:.1f} tokens/s, {a.batch} prompts {bestn:.1f} tokens/s: "
          f"{bestn / best1:.2f}x")
    if not a.products:
        return
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    head = str(cfg["d_model"] // cfg["n_heads"])
    per_token = {}  # n -> (oneDNN ms per token, weight products ms per token, shapes) of the fastest round
    for r in range(a.rounds):
        for n in (1, a.batch):
            t, s, prod = run(a.bin, a.model, n, a.gen_length, verbose=True)
            big = {k: v for k, v in prod.items() if head not in k.split(":")[1].split("x")}
            cur = (sum(prod.values()) / t, sum(big.values()) / t, prod)
            print(f"round {r + 1}, ONEDNN_VERBOSE: {n} prompt(s): oneDNN {cur[0]:.2f} ms/token, "
                  f"weight products {cur[1]:.2f} ms/token", flush=True)
            if n not in per_token or cur[1] < per_token[n][1]:
                per_token[n] = cur
    for n in (1, a.batch):
        print(f"{n} prompt(s), fastest round: largest products (ms over the run):")
        for k, v in sorted(per_token[n][2].items(), key=lambda x: -x[1])[:5]:
            print(f"    {v:8.1f} ms  {k}")
    w1, wn = per_token[1][1], per_token[a.batch][1]
    print(f"weight products per token: 1 prompt {w1:.2f} ms, {a.batch} prompts {wn:.2f} ms: {w1 / wn:.2f}x "
          f"(what packing gains on them; the rest of a step does not shrink per token)")


if __name__ == "__main__":
    sys.exit(main())
