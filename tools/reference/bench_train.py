"""Training throughput of a straightforward PyTorch implementation of masked-diffusion training,
for comparison with illada's bench/train_bench.cc (TrainStep/<config>/bf16) on the same model
and batch.

    /usr/bin/python3 tools/reference/bench_train.py --config bench/configs/small.json --doc-len 512
    /usr/bin/python3 tools/reference/bench_train.py --config bench/configs/300m.json --doc-len 1024 --steps 2

The batch is the benchmark's: --tokens (2048) tokens per step as documents of --doc-len tokens
that do not attend to each other (equal lengths, so a [docs, doc_len] batch). One step is what
the LLaDA pre-training recipe does: draw t ~ U(0, 1) per document, mask each token with
p = (1 - 1e-3) t + 1e-3, forward, cross-entropy on the masked positions weighted 1/p and
divided by the tokens of the step, backward, clip the global gradient norm at 1, AdamW
(betas 0.9/0.95, weight decay 0.1, none on norm weights). fp32 master weights and optimizer
state with bf16 autocast on the CPU (torch.autocast("cpu", torch.bfloat16)), as in mixed
precision training; RMSNorm and softmax in fp32. The head is applied to the masked rows only,
as illada does (--full-logits: to every row, as the official LLaDA loss code does).
Prints one JSON object with tokens_per_s (tokens of a step / mean seconds per timed step),
seconds per step, threads, and the 1-minute load average (on a shared machine compare only
numbers taken together, under similar load).
"""

import argparse
import json
import math
import os
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class RMSNorm(nn.Module):
    def __init__(self, d, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        x32 = x.float()
        y = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return (y * self.weight).to(x.dtype)


def rope_tables(n, hd, theta):
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    f = torch.outer(torch.arange(n, dtype=torch.float32), inv)
    emb = torch.cat([f, f], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, H, KV = c["d_model"], c["n_heads"], c["n_kv_heads"]
        self.H, self.KV, self.hd = H, KV, d // H
        self.attn_norm = RMSNorm(d, c["rms_norm_eps"])
        self.q = nn.Linear(d, H * self.hd, bias=False)
        self.k = nn.Linear(d, KV * self.hd, bias=False)
        self.v = nn.Linear(d, KV * self.hd, bias=False)
        self.o = nn.Linear(H * self.hd, d, bias=False)
        self.ff_norm = RMSNorm(d, c["rms_norm_eps"])
        self.gate = nn.Linear(d, c["mlp_hidden_size"], bias=False)
        self.up = nn.Linear(d, c["mlp_hidden_size"], bias=False)
        self.down = nn.Linear(c["mlp_hidden_size"], d, bias=False)

    def forward(self, x, cos, sin):
        B, L, _ = x.shape
        h = self.attn_norm(x)
        q = self.q(h).view(B, L, self.H, self.hd).transpose(1, 2)
        k = self.k(h).view(B, L, self.KV, self.hd).transpose(1, 2)
        v = self.v(h).view(B, L, self.KV, self.hd).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if self.KV != self.H:
            k = k.repeat_interleave(self.H // self.KV, dim=1)
            v = v.repeat_interleave(self.H // self.KV, dim=1)
        s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.hd)  # bidirectional
        p = torch.softmax(s.float(), dim=-1).to(v.dtype)
        a = torch.matmul(p, v).transpose(1, 2).reshape(B, L, self.H * self.hd)
        x = x + self.o(a)
        h = self.ff_norm(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


class LLaDA(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.emb = nn.Embedding(c["embedding_size"], c["d_model"])
        self.blocks = nn.ModuleList(Block(c) for _ in range(c["n_layers"]))
        self.norm = RMSNorm(c["d_model"], c["rms_norm_eps"])
        self.head = None if c.get("weight_tying") else nn.Linear(c["d_model"], c["embedding_size"], bias=False)

    def hidden(self, ids, cos, sin):
        x = self.emb(ids)
        for b in self.blocks:
            x = b(x, cos, sin)
        return self.norm(x)

    def logits(self, h):
        return F.linear(h, self.emb.weight if self.head is None else self.head.weight)


def train_step(model, opt, ids, cos, sin, mask_id, full_logits, gen):
    B, L = ids.shape
    t = torch.rand(B, 1, generator=gen)
    p = (1 - 1e-3) * t + 1e-3
    masked = torch.rand(B, L, generator=gen) < p
    noisy = torch.where(masked, torch.full_like(ids, mask_id), ids)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = model.hidden(noisy, cos, sin)
        if full_logits:
            logits = model.logits(h)[masked]
        else:
            logits = model.logits(h[masked])
    ce = F.cross_entropy(logits.float(), ids[masked], reduction="none")
    loss = (ce / p.expand(B, L)[masked]).sum() / (B * L)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="LLaDA config.json (bench/configs/*.json)")
    ap.add_argument("--tokens", type=int, default=2048, help="tokens per step")
    ap.add_argument("--doc-len", type=int, default=512, help="tokens per document")
    ap.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--full-logits", action="store_true", help="head on every row, not only masked ones")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    with open(a.config) as f:
        c = json.load(f)
    c.setdefault("embedding_size", c["vocab_size"])
    if a.tokens % a.doc_len:
        raise SystemExit(f"--tokens {a.tokens} is not a multiple of --doc-len {a.doc_len}")
    model = LLaDA(c)
    decay = [p for n, p in model.named_parameters() if "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if "norm" in n]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=1e-4, betas=(0.9, 0.95), eps=1e-8)
    gen = torch.Generator().manual_seed(a.seed)
    B = a.tokens // a.doc_len
    ids = torch.randint(4, c["vocab_size"] - 4, (B, a.doc_len), generator=gen)
    cos, sin = rope_tables(a.doc_len, c["d_model"] // c["n_heads"], c.get("rope_theta", 500000.0))
    mask_id = c["mask_token_id"]
    train_step(model, opt, ids, cos, sin, mask_id, a.full_logits, gen)  # warm-up
    times, losses = [], []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        losses.append(train_step(model, opt, ids, cos, sin, mask_id, a.full_logits, gen))
        times.append(time.perf_counter() - t0)
    sec = sum(times) / len(times)
    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "config": os.path.basename(a.config),
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "tokens": a.tokens, "doc_len": a.doc_len, "threads": a.threads, "steps": a.steps,
        "full_logits": a.full_logits, "seconds_per_step": sec, "tokens_per_s": a.tokens / sec,
        "step_seconds": times, "losses": losses, "loadavg_1m": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
