#!/usr/bin/env python3
"""Wall time of `illada generate` under each OpenMP wait setting, on an idle machine and under
several kinds of load made by this script, in one run (docs/benchmarks.md, "Threading
defaults"). Usage: bench/threading.py ILLADA_BIN WORKDIR [REPEATS] [LOADS]
LOADS: comma-separated of idle (nothing started), busy (a shell busy loop per core), busyN (N
busy loops), nice_busy
(the same at nice 19), omp (another OpenMP program that spins: this generate in a loop with
libgomp's default), omp_illada (the same with illada's default); default all."""
import json, os, statistics, subprocess, sys, time

bin_, work = sys.argv[1], sys.argv[2]
reps = int(sys.argv[3]) if len(sys.argv) > 3 else 3
loads_wanted = (sys.argv[4] if len(sys.argv) > 4 else "idle,busy,nice_busy,omp,omp_illada").split(",")
ncpu = os.cpu_count()
OMP_VARS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "OMP_NUM_THREADS")

# name -> environment (nothing set: illada's own default, chosen at start-up from the load)
SETTINGS = {
    "illada default (adaptive)": {},
    "libgomp default (before)": {"GOMP_SPINCOUNT": "300000"},  # what libgomp does when nothing is set
    "spin 1e3": {"GOMP_SPINCOUNT": "1000"},
    "1 thread": {"OMP_NUM_THREADS": "1"},
}
if os.environ.get("THREADING_ALL_SETTINGS"):
    SETTINGS.update({"spin 1e4": {"GOMP_SPINCOUNT": "10000"}, "spin 1e5": {"GOMP_SPINCOUNT": "100000"}})

def models():
    out = []
    tiny = os.path.join(work, "demo_size")
    if not os.path.exists(os.path.join(tiny, "config.json")):
        cfg = {"d_model": 128, "n_layers": 4, "n_heads": 4, "n_kv_heads": 2, "mlp_hidden_size": 384,
               "vocab_size": 768, "max_sequence_length": 256, "weight_tying": True,
               "mask_token_id": 767, "eos_token_id": 766}
        os.makedirs(work, exist_ok=True)
        json.dump(cfg, open(os.path.join(work, "demo_size.json"), "w"))
        subprocess.run([bin_, "init", "--config", os.path.join(work, "demo_size.json"), "--out", tiny, "--seed", "1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ids = ",".join(str((i * 7919 + 13) % 700) for i in range(32))
    out.append(("demo-size model (d 128, 4 layers), 32 + 64 tokens, 64 steps", tiny,
                ["--prompt-ids", ids, "--gen-length", "64", "--block-length", "32", "--steps", "64"]))
    small = os.path.join(work, "small")
    if not os.path.exists(os.path.join(small, "config.json")):
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs", "small.json")
        subprocess.run([bin_, "init", "--config", src, "--out", small, "--seed", "1"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ids = ",".join(str((i * 7919 + 13) % 4000) for i in range(64))
    out.append(("small model (d 512, 8 layers), 64 + 64 tokens, 32 steps", small,
                ["--prompt-ids", ids, "--gen-length", "64", "--block-length", "32", "--steps", "32"]))
    return out

def clean_env(extra):
    env = {k: v for k, v in os.environ.items() if k not in OMP_VARS}
    env.update(extra)
    return env

def run(model, args, extra):
    t = time.perf_counter()
    subprocess.run([bin_, "generate", "--model", model, "--format", "json", "--quiet"] + args,
                   env=clean_env(extra), check=True, stdout=subprocess.DEVNULL, timeout=600)
    return time.perf_counter() - t

def start_load(kind, model, args):
    spin = ["sh", "-c", "while :; do :; done"]
    if kind == "idle":
        return []
    if kind == "busy":  # one busy loop per core, normal priority
        return [subprocess.Popen(spin) for _ in range(ncpu)]
    if kind.startswith("busy") and kind[4:].isdigit():  # busyN: N busy loops
        return [subprocess.Popen(spin) for _ in range(int(kind[4:]))]
    if kind == "nice_busy":  # the same at nice 19
        return [subprocess.Popen(["nice", "-n", "19"] + spin) for _ in range(ncpu)]
    if kind in ("omp", "omp_illada"):  # another OpenMP program in a loop: spinning (libgomp's
        # default, as illada before) or with illada's default
        env = "GOMP_SPINCOUNT=300000" if kind == "omp" else ""
        loop = ("while :; do %s '%s' generate --model '%s' --format json --quiet %s >/dev/null; done"
                % (env, bin_, model, " ".join(args)))
        return [subprocess.Popen(["sh", "-c", loop], start_new_session=True)]
    raise SystemExit("unknown load " + kind)

def stop_load(procs):
    for p in procs:
        try:
            os.killpg(p.pid, 9) if "generate" in " ".join(p.args) else p.kill()
        except ProcessLookupError:
            pass
        p.wait()

print(f"# {bin_}; {ncpu} cores; {reps} runs per cell, median wall seconds (ratio to the best setting of the row)")
cpu = [l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")][0]
print(f"# CPU: {cpu}")
for title, model, args in models():
    print(f"\n{title}\n")
    print("| load | load avg | " + " | ".join(SETTINGS) + " |")
    print("|---|---|" + "---|" * len(SETTINGS))
    for kind in loads_wanted:
        procs = start_load(kind, model, args)
        try:
            time.sleep(1.0)
            la = open("/proc/loadavg").read().split()[0]
            times = {k: [] for k in SETTINGS}
            for _ in range(reps):
                for k, e in SETTINGS.items():
                    times[k].append(run(model, args, e))
        finally:
            stop_load(procs)
        med = {k: statistics.median(v) for k, v in times.items()}
        best = min(med.values())
        cells = [f"{med[k]:.3f} ({med[k] / best:.2f}x)" for k in SETTINGS]
        print(f"| {kind} | {la} | " + " | ".join(cells) + " |", flush=True)
