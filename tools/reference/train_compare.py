"""illada's pre-training against the same recipe in PyTorch with the official initialisation.

    /usr/bin/python3 tools/reference/train_compare.py --illada build/illada [--seeds 1 2 3]
        [--steps 400] [--out /tmp/train_compare] [--threads 2]

Both sides train the same tiny iLLaDA-style model (tied embeddings, GQA) on the same tokens: the
Debian license texts in /usr/share/common-licenses, tokenized once by `illada tokenizer train`
and `illada data prepare`; the last 5% of the token stream is held out (illada's eval_fraction).
Same recipe: windows of --seq-len tokens, --batch-size windows per step, the 30% random split,
masked-diffusion loss (t ~ U(0, 1) per packed sequence, p = (1 - 1e-3) t + 1e-3, CE / p summed
over masked tokens / tokens in the batch), AdamW (lr, betas 0.9/0.95, eps 1e-8, weight decay
0.1 except on norm weights), global-norm clipping at 1, linear warm-up then constant lr, fp32.

  illada      `illada train --model-config` (weights from init_weights(): the official rules)
  reference   PyTorch: init_ref.ref_init (modeling_llada.py's init_weights / reset_parameters,
              ported line by line, torch.nn.init draws), llada_ref.forward in fp32 with autograd,
              torch.optim.AdamW; its own data order, splits and masks (torch RNG, the seed)
  illada-old  `illada train --init` from the initialisation illada used before (uniform, std 1
              for the embedding, 1/sqrt(fan_in) for matrices), for comparison

All final models are scored by ONE evaluator (llada_ref fp32 forward): every held-out window
(unsplit) with 8 fixed mask draws at t = (k + 0.5) / 8, the masked-diffusion loss averaged.
Prints a table and writes OUT/results.json. Time per seed: ~2-3 minutes for the two illada runs and
~15 CPU-minutes for the PyTorch run (one thread); seeds can run as separate processes, each with
its own --out (copy OUT/tok and OUT/data there first to share the tokens).
"""

import argparse
import glob
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import init_ref  # noqa: E402
import llada_ref as R  # noqa: E402
import st  # noqa: E402

LICENSES = ["GPL-1", "GPL-2", "GPL-3", "LGPL-2", "LGPL-2.1", "LGPL-3", "Apache-2.0", "Artistic", "BSD",
            "CC0-1.0", "GFDL-1.2", "GFDL-1.3", "MPL-1.1", "MPL-2.0"]
EPS = 1e-3


_whole_batch_attention = R.attention


def packed_attention(q, k, v, cu_seqlens, precision):
    """llada_ref.attention, one packed sequence at a time: the same values (masked keys weigh
    exactly zero there) without the [T, T] score matrix of the whole batch, 16x fewer flops
    for 16 windows of 128."""
    cu = [int(c) for c in cu_seqlens]
    return torch.cat([_whole_batch_attention(q[a:b], k[a:b], v[a:b], torch.tensor([0, b - a]), precision)
                      for a, b in zip(cu, cu[1:])])




def sh(cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def read_tokens(data_dir):
    toks = []
    for path in sorted(glob.glob(os.path.join(data_dir, "shard-*.tok"))):
        with open(path, "rb") as f:
            head = f.read(40)
            assert head[:8] == b"ILLTOKS\0", path
            n = struct.unpack("<Q", head[16:24])[0]
            toks += list(struct.unpack(f"<{n}I", f.read(4 * n)))
    return toks


def model_config(vocab, mask_id, eos_id):
    return {"d_model": 128, "n_layers": 4, "n_heads": 4, "n_kv_heads": 2, "mlp_hidden_size": 352,
            "vocab_size": vocab, "embedding_size": vocab, "max_sequence_length": 512, "rope_theta": 10000.0,
            "rms_norm_eps": 1e-5, "weight_tying": True, "mask_token_id": mask_id, "eos_token_id": eos_id}


def corrupt(clean, cu, gen, mask_id):
    """One t per packed sequence; returns (x_t, rows, targets, p_rows)."""
    xt = clean.clone()
    rows, prow = [], []
    for a, b in zip(cu[:-1], cu[1:]):
        t = float(torch.rand((), generator=gen))
        p = (1 - EPS) * t + EPS
        m = torch.rand(b - a, generator=gen) < p
        for i in torch.nonzero(m).flatten().tolist():
            if int(clean[a + i]) == mask_id:
                continue
            rows.append(a + i)
            prow.append(p)
    rows = torch.tensor(rows, dtype=torch.int64)
    xt[rows] = mask_id
    return xt, rows, clean[rows], torch.tensor(prow, dtype=torch.float32)


def diffusion_loss(W, cfg, xt, cu, rows, targets, prow):
    R.attention = packed_attention
    try:
        logits = R.forward(W, cfg, xt, torch.tensor(cu, dtype=torch.int64), "fp32")
    finally:
        R.attention = _whole_batch_attention
    if rows.numel() == 0:
        return logits.sum() * 0.0
    ce = torch.nn.functional.cross_entropy(logits[rows], targets, reduction="none")
    return (ce / prow).sum() / xt.shape[0]


def torch_train(cfg, train_tokens, a, seed):
    torch.manual_seed(seed)
    W = {n: t.float().clone().requires_grad_(True) for n, t in init_ref.ref_init(cfg, seed).items()}
    decay = [t for t in W.values() if t.dim() > 1]  # no decay on the norm weights
    no_decay = [t for t in W.values() if t.dim() == 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(1000 + seed)
    L, B = a.seq_len, a.batch_size
    n_windows = len(train_tokens) // L
    windows = torch.tensor(train_tokens[: n_windows * L], dtype=torch.int64).view(n_windows, L)
    order, pos = torch.randperm(n_windows, generator=gen), 0
    for step in range(a.steps):
        lr = a.lr * min(1.0, (step + 1) / a.warmup) if a.warmup > 0 else a.lr
        for g in opt.param_groups:
            g["lr"] = lr
        ids, cu = [], [0]
        for _ in range(B):
            if pos == n_windows:
                order, pos = torch.randperm(n_windows, generator=gen), 0
            w = windows[order[pos]]
            pos += 1
            ids.append(w)
            if float(torch.rand((), generator=gen)) < 0.3:  # the random split
                cut = int(torch.randint(1, L, (), generator=gen))
                cu += [cu[-1] + cut, cu[-1] + L]
            else:
                cu.append(cu[-1] + L)
        clean = torch.cat(ids)
        xt, rows, targets, prow = corrupt(clean, cu, gen, cfg["mask_token_id"])
        loss = diffusion_loss(W, cfg, xt, cu, rows, targets, prow)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(W.values()), 1.0)
        opt.step()
    return {n: t.detach() for n, t in W.items()}


def old_init(cfg, seed):
    """The initialisation illada used before following the official rules."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, t in init_ref.ref_init(cfg, seed).items():
        if t.dim() == 1:  # norm weights
            out[name] = torch.ones_like(t)
            continue
        std = 1.0 if name.endswith("wte.weight") else 1.0 / math.sqrt(t.shape[1])
        out[name] = (torch.rand(t.shape, generator=g) * 2 - 1) * std * math.sqrt(3.0)
    return out


@torch.no_grad()
def heldout_loss(W, cfg, heldout_tokens, seq_len, draws=8):
    gen = torch.Generator().manual_seed(12345)
    n = len(heldout_tokens) // seq_len
    total, count = 0.0, 0
    for w in range(n):
        clean = torch.tensor(heldout_tokens[w * seq_len:(w + 1) * seq_len], dtype=torch.int64)
        for k in range(draws):
            p = (1 - EPS) * (k + 0.5) / draws + EPS
            m = torch.rand(seq_len, generator=gen) < p
            m &= clean != cfg["mask_token_id"]
            rows = torch.nonzero(m).flatten()
            xt = clean.clone()
            xt[rows] = cfg["mask_token_id"]
            logits = R.forward(W, cfg, xt, torch.tensor([0, seq_len]), "fp32")
            ce = torch.nn.functional.cross_entropy(logits[rows], clean[rows], reduction="sum") if rows.numel() else 0.0
            total += float(ce) / p / seq_len
            count += 1
    return total / count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--illada", required=True)
    ap.add_argument("--out", default="/tmp/illada_train_compare")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--vocab", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    texts = [os.path.join("/usr/share/common-licenses", n) for n in LICENSES]
    tok, data = os.path.join(a.out, "tok"), os.path.join(a.out, "data")
    if not os.path.exists(os.path.join(data, "dataset.json")):
        sh([a.illada, "tokenizer", "train", "--input", *texts, "--vocab-size", str(a.vocab), "--out", tok, "--quiet"])
        sh([a.illada, "data", "prepare", "--tokenizer", tok, "--input", *texts, "--out", data])
    info = json.load(open(os.path.join(data, "dataset.json")))
    tokens = read_tokens(data)
    n_eval = int(math.floor(0.05 * len(tokens)))
    train_tokens, heldout = tokens[: len(tokens) - n_eval], tokens[len(tokens) - n_eval:]
    cfg = model_config(info["vocab_size"], info["mask_token_id"], info["eos_token_id"])
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f)
    common = ["--tokenizer", tok, "--data", data, "--steps", str(a.steps), "--seq-len", str(a.seq_len),
              "--batch-size", str(a.batch_size), "--lr", str(a.lr), "--warmup", str(a.warmup), "--dtype", "f32",
              "--save-dtype", "f32", "--eval-batches", "1", "--no-progress"]
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
    results = {"tokens": len(tokens), "heldout_tokens": n_eval, "config": cfg, "steps": a.steps,
               "seq_len": a.seq_len, "batch_size": a.batch_size, "lr": a.lr, "warmup": a.warmup, "runs": []}
    for seed in a.seeds:
        row = {"seed": seed}
        run = os.path.join(a.out, f"illada_{seed}")
        for d in (run, os.path.join(a.out, f"illada_old_{seed}")):
            shutil.rmtree(d, ignore_errors=True)  # a fresh run each time
        t0 = time.time()
        subprocess.run([a.illada, "train", "--model-config", os.path.join(a.out, "config.json"), "--out", run,
                        "--seed", str(seed), *common], check=True, env=env, stdout=subprocess.DEVNULL)
        row["illada_seconds"] = time.time() - t0
        row["illada"] = heldout_loss(st.load_dir(os.path.join(run, "final")), cfg, heldout, a.seq_len)
        old_dir = os.path.join(a.out, f"oldinit_{seed}")
        os.makedirs(old_dir, exist_ok=True)
        st.save(os.path.join(old_dir, "model.safetensors"), old_init(cfg, seed))
        with open(os.path.join(old_dir, "config.json"), "w") as f:
            json.dump(cfg, f)
        run_old = os.path.join(a.out, f"illada_old_{seed}")
        subprocess.run([a.illada, "train", "--init", old_dir, "--out", run_old, "--seed", str(seed), *common],
                       check=True, env=env, stdout=subprocess.DEVNULL)
        row["illada_old_init"] = heldout_loss(st.load_dir(os.path.join(run_old, "final")), cfg, heldout, a.seq_len)
        t0 = time.time()
        W = torch_train(cfg, train_tokens, a, seed)
        row["reference_seconds"] = time.time() - t0
        row["reference"] = heldout_loss(W, cfg, heldout, a.seq_len)
        row["initial"] = heldout_loss(init_ref.ref_init(cfg, seed), cfg, heldout, a.seq_len)
        print(json.dumps(row), flush=True)
        results["runs"].append(row)

    def stats(key):
        v = [r[key] for r in results["runs"]]
        m = sum(v) / len(v)
        sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
        return m, sd

    print(f"\nheld-out masked-diffusion loss after {a.steps} steps ({len(a.seeds)} seeds, mean ± sd), "
          f"{len(tokens)} tokens, {n_eval} held out:")
    for key, label in (("initial", "official init, before training"), ("reference", "PyTorch, official init"),
                       ("illada", "illada"), ("illada_old_init", "illada, previous init")):
        m, sd = stats(key)
        results[key] = {"mean": m, "sd": sd}
        print(f"  {label:32s} {m:.4f} ± {sd:.4f}   " + " ".join(f"{r[key]:.4f}" for r in results["runs"]))
    with open(os.path.join(a.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
