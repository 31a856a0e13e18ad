#!/usr/bin/env python3
"""Bounded load test of `illada serve` on loopback (docs/benchmarks.md, "Serving"): for each
count of concurrent clients, every client sends a fixed number of streaming requests one after
the other (client c's k-th request takes prompt (c + k) mod the number of prompts, one prompt per
client of the largest count); the run stops by itself. Every answer is checked against the same request sent alone
(temperature 0, batch invariance), errors are counted, and the server's memory (RSS) is read
after each phase. Reports aggregate tokens/s, p50/p99 latency, p50/p99 time to the first
streamed text, and the batch sizes /metrics saw.

Usage: bench/serve_load.py ILLADA_BIN WORKDIR [--models demo,small] [--clients 1,4,8,16]
       [--requests N] [--max-tokens N] [--block-length N]
The models are made in WORKDIR: a byte-level BPE tokenizer trained on the repository's docs, and
random weights by `illada init` of the demo's size (d 128, 4 layers) and of
bench/configs/small.json (d 512, 8 layers) over its vocabulary."""
import argparse
import glob
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_model(bin_, work, name, vocab, shape):
    out = os.path.join(work, name)
    if os.path.exists(os.path.join(out, "model.safetensors")):
        return out
    os.makedirs(out, exist_ok=True)
    corpus = os.path.join(work, "corpus.txt")
    if not os.path.exists(corpus):
        with open(corpus, "w") as f:
            for p in sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")) + [os.path.join(ROOT, "README.md")]):
                f.write(open(p, encoding="utf-8").read())
    subprocess.run([bin_, "tokenizer", "train", "--input", corpus, "--vocab-size", str(vocab), "--out", out, "--quiet"],
                   check=True, stdout=subprocess.DEVNULL)

    def tid(text):
        r = subprocess.run([bin_, "tokenize", "--tokenizer", out, "--text", text, "--no-special"], check=True,
                           capture_output=True, text=True)
        return int(r.stdout.strip())
    cfg = dict(shape, vocab_size=vocab, mask_token_id=tid("<|mdm_mask|>"), eos_token_id=tid("<|endoftext|>"))
    json.dump(cfg, open(os.path.join(out, "model_config.json"), "w"))
    subprocess.run([bin_, "init", "--config", os.path.join(out, "model_config.json"), "--out", out, "--seed", "5"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


MODELS = {
    "demo": ("demo size (d 128, 4 layers, vocab 768)", 768,
             {"d_model": 128, "n_layers": 4, "n_heads": 4, "n_kv_heads": 2, "mlp_hidden_size": 384,
              "max_sequence_length": 1024, "weight_tying": True}),
    "small": ("small config (d 512, 8 layers, vocab 4096)", 4096,
              {k: v for k, v in json.load(open(os.path.join(ROOT, "bench", "configs", "small.json"))).items()
               if k not in ("vocab_size", "embedding_size", "mask_token_id", "eos_token_id", "pad_token_id",
                            "bos_token_id")}),
}


class Server:
    def __init__(self, bin_, model, max_batch, extra=()):
        self.proc = subprocess.Popen([bin_, "serve", "--model", model, "--port", "0", "--quiet", "--max-batch",
                                      str(max_batch), "--max-queue", "256", *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = self.proc.stderr.readline()
        m = re.search(r":(\d+) \(", line)
        if not m:
            raise SystemExit("server did not start: " + line + self.proc.stderr.read())
        self.port = int(m.group(1))
        threading.Thread(target=lambda: [None for _ in self.proc.stderr], daemon=True).start()

    def rss_mib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def metrics(self):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def complete(self, body):
        """One streaming request: (text, completion tokens, latency s, time to first text s)."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        t0 = time.perf_counter()
        c.request("POST", "/v1/completions", json.dumps({**body, "stream": True,
                                                         "stream_options": {"include_usage": True}}),
                  {"Content-Type": "application/json"})
        r = c.getresponse()
        if r.status != 200:
            raise RuntimeError(f"status {r.status}: {r.read()[:300]}")
        text, first, usage, buf = "", None, None, b""
        while True:
            chunk = r.read1(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                data = ev.decode()[6:]
                if data == "[DONE]":
                    continue
                j = json.loads(data)
                if "error" in j:
                    raise RuntimeError(j["error"]["message"])
                if j.get("usage"):
                    usage = j["usage"]
                for ch in j["choices"]:
                    if ch.get("text"):
                        if first is None:
                            first = time.perf_counter() - t0
                        text += ch["text"]
        c.close()
        latency = time.perf_counter() - t0
        return text, usage["completion_tokens"], latency, first if first is not None else latency

    def stop(self):
        self.proc.terminate()
        self.proc.wait(60)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def phase(srv, n, requests, prompts, body, alone, detail=False):
    """n clients, `requests` each; returns (table row with {ratio} to fill, tokens/s)."""
    m0 = srv.metrics()
    results, errors, lock = [], [], threading.Lock()

    def client(c):
        for k in range(requests):
            i = (c + k) % len(prompts)
            try:
                r = srv.complete(body(i))
                with lock:
                    results.append((i, *r))
            except Exception as e:  # noqa: BLE001 (counted and reported)
                with lock:
                    errors.append(str(e))
    threads = [threading.Thread(target=client, args=(c,)) for c in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    m1 = srv.metrics()
    tokens = sum(r[2] for r in results)
    rate = tokens / wall
    mism = sum(1 for r in results if r[1] != alone[r[0]])
    if detail:
        return None, rate, mism, len(errors)
    passes = m1["illada_forward_passes_total"] - m0["illada_forward_passes_total"]
    seqs = m1["illada_batch_size_sum"] - m0["illada_batch_size_sum"]
    lat = [r[3] for r in results]
    ttft = [r[4] for r in results]
    row = (f"| {n} | {len(results)} | {tokens} | {wall:.2f} | {rate:.1f} | {{ratio}} | "
           f"{pct(lat, 50):.2f} / {pct(lat, 99):.2f} | {pct(ttft, 50):.2f} / {pct(ttft, 99):.2f} | "
           f"{seqs / max(passes, 1):.1f} / {m1['illada_batch_size_max']:.0f} | {mism} | {len(errors)} | "
           f"{srv.rss_mib():.0f} | {m1.get('illada_gemm_primitives', 0):.0f} |")
    for e in errors[:3]:
        row += "\n  error: " + e
    return row, rate


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("work")
    ap.add_argument("--models", default="demo,small")
    ap.add_argument("--clients", default="1,4,8,16")
    ap.add_argument("--requests", type=int, default=2, help="requests per client")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--invariance-clients", type=int, default=8,
                    help="then compare with a --no-batch-invariant server at this many clients (0: no)")
    a = ap.parse_args()
    clients = [int(c) for c in a.clients.split(",")]
    os.makedirs(a.work, exist_ok=True)
    cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True)
                .stdout.splitlines() if l.startswith("Model name")), "?")
    print(f"CPU: {cpu}, {os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.2f}")
    for key in a.models.split(","):
        title, vocab, shape = MODELS[key]
        model = make_model(a.bin, a.work, key, vocab, shape)
        srv = Server(a.bin, model, max(clients))
        try:
            words = open(os.path.join(a.work, "corpus.txt"), encoding="utf-8").read().split()
            prompts = [" ".join(words[i * 37:i * 37 + 24]) for i in range(max(clients))]
            body = lambda i: {"prompt": prompts[i], "max_tokens": a.max_tokens, "block_length": a.block_length,  # noqa
                              "seed": i}
            # the answer of every request alone (also warms the server up)
            alone = {}
            for i in range(len(prompts)):
                alone[i] = srv.complete(body(i))[0]
            rss0 = srv.rss_mib()
            print(f"\n{title}: {len(prompts)} distinct prompts, max_tokens {a.max_tokens}, block_length "
                  f"{a.block_length}, server defaults (variable length, dual cache, threshold 0.9, temperature 0); "
                  f"RSS after the sequential pass {rss0:.0f} MiB")
            print("| clients | requests | tokens | seconds | tokens/s | vs 1 client | p50 / p99 latency s | "
                  "p50 / p99 first text s | mean / max batch | mismatches | errors | RSS MiB | gemm primitives |")
            print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
            base = None
            for n in clients:
                row, rate = phase(srv, n, a.requests, prompts, body, alone)
                base = base or rate
                print(row.replace("{ratio}", f"{rate / base:.2f}x"), flush=True)
            if a.invariance_clients:
                n = a.invariance_clients
                print(f"\nbatch invariance on/off, {n} clients, alternating servers (tokens/s; mismatches against "
                      "the invariant sequential answers)")
                print("| server | tokens/s | mismatches | errors |")
                print("|---|---|---|---|")
                srv2 = Server(a.bin, model, max(clients), ["--no-batch-invariant"])
                try:
                    for rnd in range(2):
                        for name, sv in (("invariant (default)", srv), ("--no-batch-invariant", srv2)):
                            _, rate, mism, errs = phase(sv, n, a.requests, prompts, body, alone, detail=True)
                            print(f"| {name}, round {rnd + 1} | {rate:.1f} | {mism} | {errs} |", flush=True)
                finally:
                    srv2.stop()
        finally:
            srv.stop()
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
