"""Independent PyTorch reference of the LLaDA / iLLaDA forward pass (SPEC section 1).

The model is a set of plain functions over a dict of tensors keyed by the Hugging Face
names (`model.transformer.blocks.{i}.q_proj.weight`, ...). Inputs are packed: `ids [T]`
holds several sequences back to back and `cu_seqlens [S+1]` their cumulative offsets;
each sequence attends only to itself and its RoPE positions restart at 0.

Three numeric modes (`precision=`):
  "fp64"  everything (weights, activations, RoPE tables, softmax) in float64: ground truth.
  "fp32"  everything in float32 (what a plain fp32 engine computes, up to summation order).
  "bf16"  every matmul input -- weights AND activations, including q/k for the scores and
          the softmax probabilities / v for the weighted sum -- is rounded to bf16, products
          accumulate in fp32; RMSNorm, RoPE, softmax, SiLU, the residual stream stay fp32.
          This models a bf16 engine with fp32 accumulation.
"""

import math

import torch

PRECISIONS = ("fp64", "fp32", "bf16")


# ----------------------------------------------------------------------------- config


def dims(cfg):
    """Sizes read from a LLaDA-style config.json dict."""
    d = cfg["d_model"]
    n_heads = cfg["n_heads"]
    n_kv = cfg.get("n_kv_heads") or n_heads
    if d % n_heads != 0:
        raise ValueError(f"d_model {d} not divisible by n_heads {n_heads}")
    if n_heads % n_kv != 0:
        raise ValueError(f"n_kv_heads {n_kv} does not divide n_heads {n_heads}")
    return {
        "d": d,
        "n_layers": cfg["n_layers"],
        "n_heads": n_heads,
        "n_kv": n_kv,
        "hd": d // n_heads,
        "mlp": cfg["mlp_hidden_size"],
        "vocab": cfg.get("embedding_size") or cfg["vocab_size"],
        "theta": float(cfg["rope_theta"]),
        "eps": float(cfg["rms_norm_eps"]),
        "tied": bool(cfg["weight_tying"]),
    }


# ----------------------------------------------------------------------------- ops


def compute_dtype(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return torch.float64 if precision == "fp64" else torch.float32


def matmul_t(a, b, precision):
    """a @ b^T. In bf16 mode both inputs are rounded to bf16 first; the products of two bf16
    numbers are exact in fp32, so only the fp32 summation order differs from a real bf16 GEMM."""
    if precision == "bf16":
        a = a.bfloat16().float()
        b = b.bfloat16().float()
    return a @ b.transpose(-1, -2)


def rmsnorm(x, w, eps):
    """x * rsqrt(mean(x^2) + eps) * w over the last dim, in x's dtype (fp32 or fp64)."""
    return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + eps) * w.to(x.dtype)


def positions_from_cu_seqlens(cu_seqlens):
    """Position of every packed token within its own sequence: 0..L_s-1 for each s."""
    cu = [int(c) for c in cu_seqlens]
    if cu[0] != 0 or any(b < a for a, b in zip(cu, cu[1:])):
        raise ValueError(f"cu_seqlens must start at 0 and be non-decreasing, got {cu}")
    return torch.cat([torch.arange(b - a, dtype=torch.int64) for a, b in zip(cu, cu[1:])])


def rope_cos_sin(positions, hd, theta, dtype):
    """cos/sin tables [T, hd]: inv_freq[i] = theta^(-2i/hd), i in 0..hd/2-1, angles
    pos * inv_freq duplicated over both halves (rotate-half / GPT-NeoX layout)."""
    i = torch.arange(hd // 2, dtype=dtype)
    inv_freq = 1.0 / (theta ** (2.0 * i / hd))
    ang = positions.to(dtype)[:, None] * inv_freq[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos(), ang.sin()


def rotate_half(x):
    """cat(-x2, x1) over the last dim, x1/x2 its first/second halves."""
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


def apply_rope(x, cos, sin):
    """x [T, H, hd]; cos/sin [T, hd]."""
    return x * cos[:, None, :] + rotate_half(x) * sin[:, None, :]


def block_diagonal_mask(cu_seqlens, T):
    """Boolean [T, T]: True where query i and key j belong to the same packed sequence."""
    seg = torch.empty(T, dtype=torch.int64)
    cu = [int(c) for c in cu_seqlens]
    if cu[-1] != T:
        raise ValueError(f"cu_seqlens[-1] = {cu[-1]} but T = {T}")
    for s, (a, b) in enumerate(zip(cu, cu[1:])):
        seg[a:b] = s
    return seg[:, None] == seg[None, :]


def attention(q, k, v, cu_seqlens, precision):
    """Non-causal grouped-query attention over packed sequences.

    q [T, n_heads, hd], k/v [T, n_kv, hd] -> [T, n_heads, hd]. Query head h reads kv head
    h // (n_heads / n_kv); scores are scaled by 1/sqrt(hd) and restricted to the same sequence.
    """
    T, n_heads, hd = q.shape
    n_kv = k.shape[1]
    group = n_heads // n_kv
    kv_of_head = torch.arange(n_heads) // group
    kh = k[:, kv_of_head, :].transpose(0, 1)  # [n_heads, T, hd]
    vh = v[:, kv_of_head, :].transpose(0, 1)  # [n_heads, T, hd]
    qh = q.transpose(0, 1)  # [n_heads, T, hd]
    scores = matmul_t(qh, kh, precision) * (1.0 / math.sqrt(hd))  # [n_heads, T, T]
    allowed = block_diagonal_mask(cu_seqlens, T)
    scores = scores.masked_fill(~allowed[None, :, :], float("-inf"))
    p = torch.softmax(scores, dim=-1)
    out = matmul_t(p, vh.transpose(-1, -2), precision)  # p @ v
    return out.transpose(0, 1).contiguous()  # [T, n_heads, hd]


# ----------------------------------------------------------------------------- model


def block_forward(W, i, x, cfg, cos, sin, cu_seqlens, precision):
    """One LLaDA block (pre-norm, no biases) applied to the residual stream x [T, d]."""
    D = dims(cfg)
    p = f"model.transformer.blocks.{i}."
    dt = x.dtype
    w = lambda name: W[p + name].to(dt)  # noqa: E731
    T = x.shape[0]

    n1 = rmsnorm(x, w("attn_norm.weight"), D["eps"])
    q = matmul_t(n1, w("q_proj.weight"), precision).view(T, D["n_heads"], D["hd"])
    k = matmul_t(n1, w("k_proj.weight"), precision).view(T, D["n_kv"], D["hd"])
    v = matmul_t(n1, w("v_proj.weight"), precision).view(T, D["n_kv"], D["hd"])
    q = apply_rope(q, cos, sin)
    k = apply_rope(k, cos, sin)
    a = attention(q, k, v, cu_seqlens, precision).reshape(T, D["n_heads"] * D["hd"])
    x = x + matmul_t(a, w("attn_out.weight"), precision)

    n2 = rmsnorm(x, w("ff_norm.weight"), D["eps"])
    g = matmul_t(n2, w("ff_proj.weight"), precision)
    u = matmul_t(n2, w("up_proj.weight"), precision)
    h = torch.nn.functional.silu(g) * u
    x = x + matmul_t(h, w("ff_out.weight"), precision)
    return x


def head_weight(W, cfg):
    """The [vocab, d] output matrix: ff_out (untied, LLaDA) or wte (tied, iLLaDA)."""
    if dims(cfg)["tied"]:
        return W["model.transformer.wte.weight"]
    return W["model.transformer.ff_out.weight"]


def forward(W, cfg, ids, cu_seqlens, precision="fp64", return_hidden=False):
    """Logits [T, vocab] for packed ids [T]. Weights may be any float dtype (bf16 weights are
    upcast exactly). With return_hidden, also returns the residual stream after every block."""
    D = dims(cfg)
    dt = compute_dtype(precision)
    ids = torch.as_tensor(ids, dtype=torch.int64)
    T = ids.shape[0]
    if int(cu_seqlens[-1]) != T:
        raise ValueError(f"cu_seqlens[-1] = {int(cu_seqlens[-1])} but T = {T}")
    if ids.min() < 0 or ids.max() >= D["vocab"]:
        raise ValueError("token id out of range")

    pos = positions_from_cu_seqlens(cu_seqlens)
    cos, sin = rope_cos_sin(pos, D["hd"], D["theta"], dt)

    wte = W["model.transformer.wte.weight"]
    if precision == "bf16":  # a bf16 engine holds the embedding table in bf16 too
        wte = wte.bfloat16()
    x = wte.to(dt)[ids]  # no scaling, no embedding norm
    hidden = []
    for i in range(D["n_layers"]):
        x = block_forward(W, i, x, cfg, cos, sin, cu_seqlens, precision)
        hidden.append(x)
    xf = rmsnorm(x, W["model.transformer.ln_f.weight"].to(dt), D["eps"])
    logits = matmul_t(xf, head_weight(W, cfg).to(dt), precision)
    return (logits, hidden) if return_hidden else logits
