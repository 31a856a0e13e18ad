#!/usr/bin/env python3
"""Load time, generation time and peak RSS of one generation through the Python binding (the C
API), for a choice of weights packing: the figures of docs/benchmarks.md for pack_weights.

  ILLADA_LIBRARY=build/libillada.so PYTHONPATH=python \\
    python3 bench/python_generate_memory.py MODEL {chunks|whole} [--gen-length 32] [--steps 4]

Prompt: 64 ids (i * 7919 mod 126000, below the vocabulary of LLaDA-8B), one block, dual cache,
2 threads. Run each choice in its own process (peak RSS is per process).
"""
import argparse
import resource
import time

import illada


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("pack", choices=["chunks", "whole"])
    ap.add_argument("--gen-length", type=int, default=32)
    ap.add_argument("--steps", type=int, default=4)
    a = ap.parse_args()
    t0 = time.time()
    with illada.Model.load(a.model, pack_weights=True if a.pack == "chunks" else "whole", threads=2) as m:
        t1 = time.time()
        prompt = [(i * 7919) % min(126000, m.n_vocab) for i in range(64)]
        out = m.generate(prompt_ids=prompt, gen_length=a.gen_length, block_length=a.gen_length, steps=a.steps,
                         cache="dual")
        t2 = time.time()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"{a.pack}: load {t1 - t0:.1f} s, generate {t2 - t1:.1f} s, peak RSS {peak_kb} KB, "
          f"id sum {sum(out['ids'])}")


if __name__ == "__main__":
    main()
