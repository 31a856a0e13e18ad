#!/usr/bin/env python3
"""Runs the quantised-product benchmarks (bench/qgemm_bench.cc) and prints the markdown table
of docs/benchmarks.md: for each shape and row count, oneDNN's bf16 product on packed weights
and every quantised type and kernel, each as its time and its speed relative to bf16 measured
in the same run (repetitions interleaved at random, the fastest repetition of each kept).

  python3 bench/qgemm_table.py [--bench build/illada_bench] [--filter REGEX] [--reps 3]
                               [--threads 2] [--min-time 0.3] [--json OUT.json]
  python3 bench/qgemm_table.py --from OUT.json      # format an earlier run again
"""
import argparse
import json
import os
import re
import subprocess
import sys


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def run(args):
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), OMP_WAIT_POLICY="passive")
    if args.onednn_isa:  # oneDNN as on a CPU without AMX (or without AVX-512)
        env["ONEDNN_MAX_CPU_ISA"] = env["DNNL_MAX_CPU_ISA"] = args.onednn_isa
    cmd = [args.bench, f"--benchmark_filter={args.filter}", f"--benchmark_repetitions={args.reps}",
           "--benchmark_enable_random_interleaving=true", f"--benchmark_min_time={args.min_time}",
           "--benchmark_report_aggregates_only=true", "--benchmark_format=json"]
    print("running:", " ".join(cmd), f"(OMP_NUM_THREADS={args.threads})", file=sys.stderr)
    load_before = os.getloadavg()[0]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    data = json.loads(out)
    data["illada"] = {"load_before": load_before, "load_after": os.getloadavg()[0],
                      "threads": args.threads, "cpu": cpu_model(), "command": " ".join(cmd),
                      "onednn_isa": args.onednn_isa}
    return data


def table(data):
    # name -> min time (ms): CPU time with one thread (robust when other jobs take the core away
    # for a while), wall time with several (the main thread's CPU time misses the others').
    meta = data.get("illada", {})
    field = "cpu_time" if meta.get("threads") == 1 else "real_time"
    best = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "min":
            continue
        name = b["run_name"].removesuffix("/real_time")
        best[name] = b[field]
    rows = {}  # (n, k, t) -> {column: ms}
    columns = []
    for name, ms in best.items():
        m = re.match(r"Bf16Gemm(Cold)?/n(\d+)_k(\d+)/(\d+)$", name)
        if m:
            rows.setdefault((m.group(1) or "",) + tuple(map(int, m.groups()[1:])), {})["bf16"] = ms
            continue
        m = re.match(r"F32Gemm/n(\d+)_k(\d+)/(\d+)$", name)
        if m:
            if "f32" not in columns:
                columns.append("f32")
            rows.setdefault(("",) + tuple(map(int, m.groups())), {})["f32"] = ms
            continue
        m = re.match(r"QGemm(Cold)?/(\w+)/(\w+)/n(\d+)_k(\d+)/(\d+)$", name)
        if m:
            col = f"{m.group(2)} {m.group(3)}"
            if col not in columns:
                columns.append(col)
            rows.setdefault((m.group(1) or "", int(m.group(4)), int(m.group(5)), int(m.group(6))), {})[col] = ms
    order = {"f32": (-1, "")}
    for col in columns:
        if col != "f32":
            typ, kern = col.split(" ", 1)
            order[col] = (["q8_0", "q4_0", "q4_K", "q6_K"].index(typ) if typ in ["q8_0", "q4_0", "q4_K", "q6_K"] else 9, kern)
    columns.sort(key=lambda c: order[c])
    isa = f"; oneDNN capped to {meta['onednn_isa']}" if meta.get("onednn_isa") else ""
    lines = [f"CPU: {meta.get('cpu', cpu_model())}{isa}; {meta.get('threads', '?')} threads ({field}); load average "
             f"{meta.get('load_before', float('nan')):.1f} before, {meta.get('load_after', float('nan')):.1f} after.",
             "", "| n x k | T | bf16 ms | " + " | ".join(columns) + " |",
             "|---|---|---|" + "---|" * len(columns)]
    for (cold, n, k, t) in sorted(rows):
        r = rows[(cold, n, k, t)]
        bf = r.get("bf16")
        cells = []
        for col in columns:
            if col not in r:
                cells.append("")
            elif bf:
                cells.append(f"{r[col]:.2f} (**{bf / r[col]:.2f}x**)")
            else:
                cells.append(f"{r[col]:.2f}")
        label = f"{n} x {k}" + (" cold" if cold else "")
        lines.append(f"| {label} | {t} | {bf:.2f} | " + " | ".join(cells) + " |" if bf else
                     f"| {label} | {t} | | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", default=os.path.join(os.path.dirname(__file__), "..", "build", "illada_bench"))
    ap.add_argument("--filter", default="QGemm/.*/(amx|avx512_vnni)/|Bf16Gemm")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-time", default="0.3")
    ap.add_argument("--onednn-isa", help="cap oneDNN's instruction set (ONEDNN_MAX_CPU_ISA), e.g. "
                    "AVX512_CORE_BF16 for a CPU without AMX, AVX2 for one without AVX-512")
    ap.add_argument("--json", help="also write the raw results here")
    ap.add_argument("--from", dest="src", help="format the results of an earlier --json run")
    args = ap.parse_args()
    if args.src:
        with open(args.src) as f:
            data = json.load(f)
    else:
        data = run(args)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(data, f)
    print(table(data))


if __name__ == "__main__":
    main()
