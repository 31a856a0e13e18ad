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
          accumulate in fp32; the q/k/v and gate/up projections' outputs are rounded to bf16
          too (a bf16 Linear's output, as the official model in bf16 has them before its fp32
          RoPE and its SiLU); RMSNorm, RoPE, softmax, SiLU, the residual stream stay fp32.
          This models a bf16 engine with fp32 accumulation (illada's one block).
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


def linear_out(y, precision):
    """A projection's output as the next op reads it: bf16-rounded in bf16 mode."""
    return y.bfloat16().float() if precision == "bf16" else y


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
    q = linear_out(matmul_t(n1, w("q_proj.weight"), precision), precision).view(T, D["n_heads"], D["hd"])
    k = linear_out(matmul_t(n1, w("k_proj.weight"), precision), precision).view(T, D["n_kv"], D["hd"])
    v = linear_out(matmul_t(n1, w("v_proj.weight"), precision), precision).view(T, D["n_kv"], D["hd"])
    q = apply_rope(q, cos, sin)
    k = apply_rope(k, cos, sin)
    a = attention(q, k, v, cu_seqlens, precision).reshape(T, D["n_heads"] * D["hd"])
    x = x + matmul_t(a, w("attn_out.weight"), precision)

    n2 = rmsnorm(x, w("ff_norm.weight"), D["eps"])
    g = linear_out(matmul_t(n2, w("ff_proj.weight"), precision), precision)
    u = linear_out(matmul_t(n2, w("up_proj.weight"), precision), precision)
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


# ----------------------------------------------------------------------------- KV cache
# Added for the Fast-dLLM sampler ports (tools/reference/llada_generate.py). Nothing above
# depends on it. One sequence at a time (no packing): a subset of a canvas is computed while
# the keys/values of the other positions come from a cache built by an earlier forward.


def attention_kv(q, k, v, precision):
    """Non-causal grouped-query attention of Tq queries over Tk keys of ONE sequence.

    q [Tq, n_heads, hd], k/v [Tk, n_kv, hd] -> [Tq, n_heads, hd]. Same operations as
    `attention` (kv head h // group, scores * 1/sqrt(hd), softmax over keys) without the
    packed-sequence mask, so with Tq == Tk it equals `attention` for a single sequence."""
    Tq, n_heads, hd = q.shape
    n_kv = k.shape[1]
    group = n_heads // n_kv
    kv_of_head = torch.arange(n_heads) // group
    kh = k[:, kv_of_head, :].transpose(0, 1)  # [n_heads, Tk, hd]
    vh = v[:, kv_of_head, :].transpose(0, 1)
    qh = q.transpose(0, 1)  # [n_heads, Tq, hd]
    scores = matmul_t(qh, kh, precision) * (1.0 / math.sqrt(hd))  # [n_heads, Tq, Tk]
    p = torch.softmax(scores, dim=-1)
    out = matmul_t(p, vh.transpose(-1, -2), precision)
    return out.transpose(0, 1).contiguous()


def forward_kv(W, cfg, ids, start=0, cache=None, cache_mode=None, precision="fp64"):
    """Forward of part of one canvas with a Fast-dLLM style KV cache.

    ids [n] are the tokens at canvas positions start .. start+n-1; they are the queries, and
    their RoPE uses those true positions. Keys/values per layer:
      cache_mode None      no cache: start must be 0, keys = the n computed positions
                           (== `forward` of that one sequence);
      cache_mode "prefix"  cache[i] = (k, v) of positions 0 .. start-1; keys = cache ++ fresh
                           (Fast-dLLM prefix cache: `model(x[:, start:], past_key_values=...)`,
                           i.e. the block AND everything after it are recomputed);
      cache_mode "replace" cache[i] = (k, v) of the whole canvas; keys = that cache with rows
                           start .. start+n-1 replaced by the fresh k/v (Fast-dLLM dual cache,
                           `replace_position`); the input cache is not modified.
    Cached k is stored after RoPE at its own position. (Fast-dLLM stores k before RoPE and
    rotates all keys 0..Tk-1 on every call: the same elementwise operation on the same values.)

    Returns (logits [n, vocab], kv) where kv[i] = (k [Tk, n_kv, hd], v [Tk, n_kv, hd]) are the
    keys/values layer i attended to: positions 0 .. start+n-1 (None / "prefix") or the whole
    canvas ("replace"). The cache holds the compute dtype (fp64, or fp32 for fp32/bf16 modes;
    bf16 mode rounds k/v to bf16 where they enter a matmul, as `attention` does).
    """
    D = dims(cfg)
    dt = compute_dtype(precision)
    ids = torch.as_tensor(ids, dtype=torch.int64)
    n = ids.shape[0]
    if cache_mode is None:
        if start != 0 or cache is not None:
            raise ValueError("without a cache the computed positions must start at 0")
    elif cache_mode not in ("prefix", "replace"):
        raise ValueError(f"cache_mode must be None, 'prefix' or 'replace', got {cache_mode!r}")
    elif cache is None or len(cache) != D["n_layers"]:
        raise ValueError("cache must hold one (k, v) pair per layer")
    if ids.min() < 0 or ids.max() >= D["vocab"]:
        raise ValueError("token id out of range")

    pos = torch.arange(start, start + n, dtype=torch.int64)
    cos, sin = rope_cos_sin(pos, D["hd"], D["theta"], dt)

    wte = W["model.transformer.wte.weight"]
    if precision == "bf16":
        wte = wte.bfloat16()
    x = wte.to(dt)[ids]
    new_kv = []
    for i in range(D["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        w = lambda name: W[p + name].to(dt)  # noqa: E731
        n1 = rmsnorm(x, w("attn_norm.weight"), D["eps"])
        q = linear_out(matmul_t(n1, w("q_proj.weight"), precision), precision).view(n, D["n_heads"], D["hd"])
        k = linear_out(matmul_t(n1, w("k_proj.weight"), precision), precision).view(n, D["n_kv"], D["hd"])
        v = linear_out(matmul_t(n1, w("v_proj.weight"), precision), precision).view(n, D["n_kv"], D["hd"])
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if cache_mode == "prefix":
            ck, cv = cache[i]
            if ck.shape[0] != start:
                raise ValueError(f"prefix cache holds {ck.shape[0]} positions, expected {start}")
            k = torch.cat([ck.to(dt), k], dim=0)
            v = torch.cat([cv.to(dt), v], dim=0)
        elif cache_mode == "replace":
            ck, cv = cache[i]
            if ck.shape[0] < start + n:
                raise ValueError("replace cache shorter than the computed range")
            kk, vv = ck.to(dt).clone(), cv.to(dt).clone()
            kk[start : start + n] = k
            vv[start : start + n] = v
            k, v = kk, vv
        new_kv.append((k, v))
        a = attention_kv(q, k, v, precision).reshape(n, D["n_heads"] * D["hd"])
        x = x + matmul_t(a, w("attn_out.weight"), precision)
        n2 = rmsnorm(x, w("ff_norm.weight"), D["eps"])
        g = linear_out(matmul_t(n2, w("ff_proj.weight"), precision), precision)
        u = linear_out(matmul_t(n2, w("up_proj.weight"), precision), precision)
        x = x + matmul_t(torch.nn.functional.silu(g) * u, w("ff_out.weight"), precision)
    xf = rmsnorm(x, W["model.transformer.ln_f.weight"].to(dt), D["eps"])
    logits = matmul_t(xf, head_weight(W, cfg).to(dt), precision)
    return logits, new_kv
