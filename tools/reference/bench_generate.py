"""Time the official LLaDA generate() (ported in llada_generate.py) on a plain bf16 PyTorch model.

    /usr/bin/python3 tools/reference/bench_generate.py --model-dir DIR            # HF dir: config.json + safetensors
    /usr/bin/python3 tools/reference/bench_generate.py --config bench/configs/llada_8b.json   # random weights
    /usr/bin/python3 tools/reference/bench_generate.py --preset small             # presets of bench/forward_bench.cc

Defaults: prompt 64 + gen 256, block 32, steps 256, cfg 0, temperature 0, 2 threads. Prints
one JSON object: {"tokens_per_s", "nfe", "seconds", ...}; tokens_per_s = gen_length / seconds
of the timed generate() call. One warm-up generate() with the same settings runs first and is
not timed (--warmup 0 to skip). The JSON also records the 1-minute load average: on a busy
machine multi-threaded torch stalls on every op, so compare numbers from an idle machine only. Other samplers: --threshold / --factor / --cache prefix|dual
run the Fast-dLLM ports, --variable-length the iLLaDA sampler (stops at EOS or --max-length).

The model is a straightforward HF-style forward, not the float64 reference: bf16 weights and
bf16 activations between ops (as modeling_llada.py runs with torch_dtype=bfloat16), RMSNorm
and softmax in fp32, GEMMs through F.linear / torch.matmul in bf16 (oneDNN), attention via
F.scaled_dot_product_attention where this torch has it (>= 2.0), else two bf16 matmuls around
an fp32 softmax. Logits come out in bf16, so the official sampler's softmax runs in bf16 as it
does upstream. Random weights give random tokens; the timing does not depend on them.
"""

import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llada_generate as G  # noqa: E402
import llada_ref as R  # noqa: E402
import st  # noqa: E402

PRESETS = {  # bench/forward_bench.cc bench_config()
    "small": dict(d_model=512, n_layers=8, n_heads=8, n_kv_heads=8, mlp_hidden_size=1408, vocab_size=4096),
    "300m": dict(d_model=1024, n_layers=16, n_heads=16, n_kv_heads=4, mlp_hidden_size=2816, vocab_size=32000),
    "1b": dict(d_model=2048, n_layers=16, n_heads=16, n_kv_heads=4, mlp_hidden_size=5632, vocab_size=32000),
}
HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


def preset_config(name):
    p = PRESETS[name]
    return {
        "d_model": p["d_model"], "n_layers": p["n_layers"], "n_heads": p["n_heads"],
        "n_kv_heads": p["n_kv_heads"], "mlp_hidden_size": p["mlp_hidden_size"],
        "vocab_size": p["vocab_size"], "embedding_size": p["vocab_size"], "max_sequence_length": 8192,
        "rope_theta": 500000.0, "rms_norm_eps": 1e-5, "weight_tying": False,
        "mask_token_id": 3, "eos_token_id": 1,
    }


def random_weights(cfg, seed=7):
    """bf16 weights, N(0, 1/fan_in) matrices, N(0, 1) embedding, unit norms."""
    D = R.dims(cfg)
    d, hd, V = D["d"], D["hd"], D["vocab"]
    g = torch.Generator().manual_seed(seed)

    def mat(o, i):
        return (torch.randn(o, i, generator=g) / math.sqrt(i)).bfloat16()

    W = {"model.transformer.wte.weight": torch.randn(V, d, generator=g).bfloat16(),
         "model.transformer.ln_f.weight": torch.ones(d, dtype=torch.bfloat16)}
    for i in range(D["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        W[p + "attn_norm.weight"] = torch.ones(d, dtype=torch.bfloat16)
        W[p + "ff_norm.weight"] = torch.ones(d, dtype=torch.bfloat16)
        W[p + "q_proj.weight"] = mat(D["n_heads"] * hd, d)
        W[p + "k_proj.weight"] = mat(D["n_kv"] * hd, d)
        W[p + "v_proj.weight"] = mat(D["n_kv"] * hd, d)
        W[p + "attn_out.weight"] = mat(d, D["n_heads"] * hd)
        W[p + "ff_proj.weight"] = mat(D["mlp"], d)
        W[p + "up_proj.weight"] = mat(D["mlp"], d)
        W[p + "ff_out.weight"] = mat(d, D["mlp"])
    if not D["tied"]:
        W["model.transformer.ff_out.weight"] = mat(V, d)
    return W


class FastModel:
    """bf16 forward with the RefModel interface (model(x), cached, with_prefix, with_replace)."""

    def __init__(self, W, cfg):
        self.cfg = cfg
        self.D = D = R.dims(cfg)
        b = lambda t: t.to(torch.bfloat16).contiguous()  # noqa: E731
        self.wte = b(W["model.transformer.wte.weight"])
        self.head = b(R.head_weight(W, cfg))
        self.ln_f = W["model.transformer.ln_f.weight"].float()
        self.layers = []
        for i in range(D["n_layers"]):
            p = f"model.transformer.blocks.{i}."
            self.layers.append({
                "attn_norm": W[p + "attn_norm.weight"].float(), "ff_norm": W[p + "ff_norm.weight"].float(),
                "q": b(W[p + "q_proj.weight"]), "k": b(W[p + "k_proj.weight"]), "v": b(W[p + "v_proj.weight"]),
                "o": b(W[p + "attn_out.weight"]), "gate": b(W[p + "ff_proj.weight"]),
                "up": b(W[p + "up_proj.weight"]), "down": b(W[p + "ff_out.weight"]),
            })
        hd = D["hd"]
        self.inv_freq = 1.0 / (D["theta"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
        self.calls = 0

    def _norm(self, x, w):
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.D["eps"]) * w).to(torch.bfloat16)

    def _rope(self, t, pos):
        """t [B, T, H, hd] bf16, pos [T]: rotate-half RoPE computed in fp32."""
        ang = pos.float()[:, None] * self.inv_freq[None, :]
        ang = torch.cat([ang, ang], dim=-1)
        cos, sin = ang.cos()[None, :, None, :], ang.sin()[None, :, None, :]
        tf = t.float()
        h = tf.shape[-1] // 2
        rot = torch.cat([-tf[..., h:], tf[..., :h]], dim=-1)
        return (tf * cos + rot * sin).to(torch.bfloat16)

    def _attend(self, q, k, v):
        """q [B, Tq, H, hd], k/v [B, Tk, n_kv, hd] -> [B, Tq, H*hd]; non-causal, GQA."""
        B, Tq, H, hd = q.shape
        group = H // k.shape[2]
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        if group > 1:
            k = k.repeat_interleave(group, dim=1)
            v = v.repeat_interleave(group, dim=1)
        if HAS_SDPA:
            o = F.scaled_dot_product_attention(q, k, v)
        else:
            s = torch.matmul(q, k.transpose(-1, -2)).float() * (1.0 / math.sqrt(hd))
            o = torch.matmul(torch.softmax(s, dim=-1).to(torch.bfloat16), v)
        return o.transpose(1, 2).reshape(B, Tq, H * hd)

    def forward(self, ids, start=0, cache=None, mode=None):
        """ids [B, T] at positions start..start+T-1. cache: per layer (k, v) [B, Tc, n_kv, hd]
        (RoPE'd) used as in llada_ref.forward_kv ("prefix" / "replace"). Returns logits, kv."""
        D = self.D
        B, T = ids.shape
        pos = torch.arange(start, start + T)
        x = self.wte[ids]
        kv = []
        for i, L in enumerate(self.layers):
            h = self._norm(x, L["attn_norm"])
            q = self._rope(F.linear(h, L["q"]).view(B, T, D["n_heads"], D["hd"]), pos)
            k = self._rope(F.linear(h, L["k"]).view(B, T, D["n_kv"], D["hd"]), pos)
            v = F.linear(h, L["v"]).view(B, T, D["n_kv"], D["hd"])
            if mode == "prefix":
                k = torch.cat([cache[i][0], k], dim=1)
                v = torch.cat([cache[i][1], v], dim=1)
            elif mode == "replace":
                kk, vv = cache[i][0].clone(), cache[i][1].clone()
                kk[:, start:start + T], vv[:, start:start + T] = k, v
                k, v = kk, vv
            kv.append((k, v))
            x = x + F.linear(self._attend(q, k, v), L["o"])
            h = self._norm(x, L["ff_norm"])
            x = x + F.linear(F.silu(F.linear(h, L["gate"])) * F.linear(h, L["up"]), L["down"])
        return F.linear(self._norm(x, self.ln_f), self.head), kv

    # --- the interface the llada_generate ports call (caches per row: [T, n_kv, hd]) ---
    def __call__(self, x):
        self.calls += 1
        return self.forward(x)[0]

    def cached(self, x):
        self.calls += 1
        logits, kv = self.forward(x)
        return logits, [[(k[b], v[b]) for k, v in kv] for b in range(x.shape[0])]

    def _with(self, x_part, start, caches, mode):
        self.calls += 1
        cache = [(torch.stack([c[i][0] for c in caches]), torch.stack([c[i][1] for c in caches]))
                 for i in range(self.D["n_layers"])]
        return self.forward(x_part, start, cache, mode)[0]

    def with_prefix(self, x_tail, start, caches):
        return self._with(x_tail, start, caches, "prefix")

    def with_replace(self, x_block, start, caches):
        return self._with(x_block, start, caches, "replace")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--model-dir", help="HF-style directory: config.json + model.safetensors (or shards)")
    src.add_argument("--config", help="config.json; random bf16 weights")
    src.add_argument("--preset", choices=sorted(PRESETS), help="random bf16 weights, bench/forward_bench.cc sizes")
    ap.add_argument("--prompt-len", type=int, default=64)
    ap.add_argument("--gen-length", type=int, default=256)
    ap.add_argument("--block-length", type=int, default=32)
    ap.add_argument("--steps", type=int, default=256, help="total steps (per block with --variable-length)")
    ap.add_argument("--cfg-scale", type=float, default=0.0)
    ap.add_argument("--threshold", type=float, default=None, help="Fast-dLLM confidence threshold")
    ap.add_argument("--factor", type=float, default=None, help="Fast-dLLM factor rule")
    ap.add_argument("--cache", choices=("none", "prefix", "dual"), default="none")
    ap.add_argument("--variable-length", action="store_true")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1, help="untimed generate() runs first")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs; the fastest is reported")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    if a.model_dir:
        with open(os.path.join(a.model_dir, "config.json")) as f:
            cfg = json.load(f)
        W = st.load_dir(a.model_dir)
        source = a.model_dir
    else:
        if a.config:
            with open(a.config) as f:
                cfg = json.load(f)
            source = a.config
        else:
            cfg, source = preset_config(a.preset), f"preset:{a.preset}"
        W = random_weights(cfg)
    model = FastModel(W, cfg)
    del W
    D = R.dims(cfg)
    mask_id = cfg["mask_token_id"]
    g = torch.Generator().manual_seed(a.seed)
    prompt = torch.randint(0, D["vocab"], (1, a.prompt_len), generator=g)
    prompt[prompt == mask_id] = (mask_id + 1) % D["vocab"]
    fast = a.threshold is not None or a.factor is not None or a.cache != "none"
    if a.variable_length:
        sampler = "var_generate"
    elif fast:
        if a.cfg_scale:
            ap.error("the Fast-dLLM samplers have no CFG")
        sampler = f"fast_dllm/{a.cache}"
    else:
        sampler = "llada"

    def run():
        model.calls = 0
        if a.variable_length:
            # Stops at the EOS id (decoded as a marker): the benchmark has no tokenizer.
            eos = cfg["eos_token_id"]
            decode = lambda ids: "".join("<eos>" if i == eos else "." for i in ids)  # noqa: E731
            sampler_kind = "llada" if not fast else "fast" if a.cache == "none" else a.cache
            out, nfe = G.var_generate(
                model, decode, prompt, steps=a.steps, gen_length=a.max_length, block_length=a.block_length,
                cfg_scale=a.cfg_scale, mask_id=mask_id, stop_tokens=["<eos>"], block_sampler=sampler_kind,
                threshold=a.threshold, factor=a.factor)
            return out.shape[1] - prompt.shape[1], nfe
        if fast:
            fn = {"none": G.fast_generate, "prefix": G.generate_with_prefix_cache,
                  "dual": G.generate_with_dual_cache}[a.cache]
            _, nfe = fn(model, prompt, steps=a.steps, gen_length=a.gen_length, block_length=a.block_length,
                        mask_id=mask_id, threshold=a.threshold, factor=a.factor)
        else:
            _, nfe = G.generate(model, prompt, steps=a.steps, gen_length=a.gen_length,
                                block_length=a.block_length, cfg_scale=a.cfg_scale, mask_id=mask_id)
        return a.gen_length, nfe

    with torch.no_grad():
        for _ in range(a.warmup):
            run()
        best = None
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            n_tokens, nfe = run()
            dt = time.perf_counter() - t0
            if best is None or dt < best[0]:
                best = (dt, n_tokens, nfe)
    seconds, n_tokens, nfe = best
    print(json.dumps({
        "tokens_per_s": n_tokens / seconds,
        "nfe": nfe,
        "seconds": seconds,
        "generated_tokens": n_tokens,
        "sampler": sampler,
        "model": source,
        "prompt_len": a.prompt_len,
        "gen_length": a.gen_length,
        "block_length": a.block_length,
        "steps": a.steps,
        "cfg_scale": a.cfg_scale,
        "threshold": a.threshold,
        "factor": a.factor,
        "threads": a.threads,
        "sdpa": HAS_SDPA,
        "torch": torch.__version__,
        # other processes on the cores make multi-threaded torch wait a scheduler slice per op
        # (measured here: 2 threads, load 3.7 on 2 cores -> 47x slower forwards); only trust
        # numbers taken with a load average well below the core count
        "loadavg_1min": os.getloadavg()[0],
    }))


if __name__ == "__main__":
    main()
