"""Self-checks of the reference and of the committed fixtures.

    /usr/bin/python3 tools/reference/check_ref.py

Checks the RoPE layout against a hand-computed example, GQA head mapping and packed
attention against naive loops, the whole forward against a second, differently shaped
implementation written after Hugging Face's modeling_llada.py ([B, H, T, hd] layout,
repeat_interleave for GQA, one sequence at a time), the safetensors writer/reader, that the
sharded fixture holds exactly the single-file tensors, that the stored reference tensors
are reproduced from the files on disk, and that regenerating the fixtures is byte-identical.
"""

import filecmp
import json
import math
import os
import struct
import sys
import tempfile

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep __pycache__ out of the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llada_ref as R  # noqa: E402
import make_fixtures  # noqa: E402
import st  # noqa: E402

FIX = os.path.join(make_fixtures.REPO, "tests", "fixtures")
MODELS = ("tiny_mha", "tiny_gqa", "tiny_gqa_sharded")


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok  {what}")


def test_rope_hand_example():
    # hd = 4, theta = 100: inv_freq = [100^0, 100^(-2/4)] = [1, 0.1]; position 2 -> angles [2, 0.2].
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0]]], dtype=torch.float64)  # [T=1, H=1, hd=4]
    cos, sin = R.rope_cos_sin(torch.tensor([2]), 4, 100.0, torch.float64)
    y = R.apply_rope(x, cos, sin)[0, 0]
    c0, s0, c1, s1 = math.cos(2), math.sin(2), math.cos(0.2), math.sin(0.2)
    want = torch.tensor(
        [1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 3 * c0 + 1 * s0, 4 * c1 + 2 * s1], dtype=torch.float64
    )
    check(torch.allclose(y, want, atol=1e-15), "RoPE rotate-half layout matches hand example")
    check(R.positions_from_cu_seqlens([0, 3, 5]).tolist() == [0, 1, 2, 0, 1], "positions restart per sequence")
    # Position 0 is the identity.
    cos, sin = R.rope_cos_sin(torch.tensor([0]), 4, 100.0, torch.float64)
    check(torch.equal(R.apply_rope(x, cos, sin), x), "RoPE at position 0 is the identity")


def naive_attention(q, k, v, cu):
    """Loops over sequences, heads and queries; GQA by explicit h // group."""
    T, H, hd = q.shape
    group = H // k.shape[1]
    out = torch.zeros_like(q)
    for a, b in zip(cu[:-1], cu[1:]):
        for h in range(H):
            kv = h // group
            for i in range(a, b):
                s = torch.stack([(q[i, h] * k[j, kv]).sum() / math.sqrt(hd) for j in range(a, b)])
                p = torch.softmax(s, dim=0)
                out[i, h] = sum(p[j - a] * v[j, kv] for j in range(a, b))
    return out


def test_attention():
    g = torch.Generator().manual_seed(0)
    cu = [0, 3, 8, 10]
    T, H, hd = 10, 4, 8
    q = torch.randn(T, H, hd, generator=g, dtype=torch.float64)
    for n_kv in (4, 2, 1):
        k = torch.randn(T, n_kv, hd, generator=g, dtype=torch.float64)
        v = torch.randn(T, n_kv, hd, generator=g, dtype=torch.float64)
        got = R.attention(q, k, v, cu, "fp64")
        check(torch.allclose(got, naive_attention(q, k, v, cu), atol=1e-12),
              f"packed attention == naive loop (n_heads 4, n_kv {n_kv})")
        # GQA == MHA with kv heads expanded by repeat_interleave (what modeling_llada.py does).
        ke = k.repeat_interleave(H // n_kv, dim=1)
        ve = v.repeat_interleave(H // n_kv, dim=1)
        check(torch.allclose(got, R.attention(q, ke, ve, cu, "fp64"), atol=1e-14),
              f"GQA (n_kv {n_kv}) == attention with kv heads expanded")
    # With n_kv == n_heads, head h must use kv head h (no mixing).
    k = torch.randn(T, H, hd, generator=g, dtype=torch.float64)
    v = torch.randn(T, H, hd, generator=g, dtype=torch.float64)
    full = R.attention(q, k, v, cu, "fp64")
    for h in range(H):
        one = R.attention(q[:, h : h + 1], k[:, h : h + 1], v[:, h : h + 1], cu, "fp64")
        check(torch.allclose(full[:, h : h + 1], one, atol=1e-14), f"MHA head {h} uses only kv head {h}")


def test_rmsnorm():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 16, generator=g, dtype=torch.float64)
    w = torch.randn(16, generator=g, dtype=torch.float64)
    want = torch.stack([x[r] / math.sqrt(float((x[r] ** 2).mean()) + 1e-5) * w for r in range(3)])
    check(torch.allclose(R.rmsnorm(x, w, 1e-5), want, atol=1e-14), "RMSNorm matches per-row formula")


def hf_style_forward(W, cfg, ids):
    """A second implementation for ONE sequence, shaped like modeling_llada.py:
    [B, H, T, hd] tensors, F.linear, rope tables via cat(freqs, freqs), GQA via
    repeat_interleave, plain softmax attention without any mask."""
    D = R.dims(cfg)
    dt = torch.float64
    P = lambda n: W[n].to(dt)  # noqa: E731
    hd = D["hd"]

    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + D["eps"]))

    L = ids.shape[0]
    inv_freq = 1.0 / (D["theta"] ** (torch.arange(0, hd, 2, dtype=dt) / hd))
    freqs = torch.einsum("i,j->ij", torch.arange(L, dtype=dt), inv_freq)
    pos = torch.cat((freqs, freqs), dim=-1)[None, None]
    sin, cos = pos.sin(), pos.cos()

    def rot(t):
        t1, t2 = t.view(*t.shape[:-1], 2, hd // 2).unbind(dim=-2)
        return torch.cat((-t2, t1), dim=-1)

    x = F.embedding(ids.long()[None], P("model.transformer.wte.weight"))  # [1, L, d]
    for i in range(D["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        h = rms(x, P(p + "attn_norm.weight"))
        q = F.linear(h, P(p + "q_proj.weight")).view(1, L, D["n_heads"], hd).transpose(1, 2)
        k = F.linear(h, P(p + "k_proj.weight")).view(1, L, D["n_kv"], hd).transpose(1, 2)
        v = F.linear(h, P(p + "v_proj.weight")).view(1, L, D["n_kv"], hd).transpose(1, 2)
        q = q * cos + rot(q) * sin
        k = k * cos + rot(k) * sin
        rep = D["n_heads"] // D["n_kv"]
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(hd), dim=-1) @ v
        att = att.transpose(1, 2).reshape(1, L, D["d"])
        x = x + F.linear(att, P(p + "attn_out.weight"))
        h = rms(x, P(p + "ff_norm.weight"))
        x = x + F.linear(F.silu(F.linear(h, P(p + "ff_proj.weight"))) * F.linear(h, P(p + "up_proj.weight")),
                         P(p + "ff_out.weight"))
    x = rms(x, P("model.transformer.ln_f.weight"))
    head = "model.transformer.wte.weight" if D["tied"] else "model.transformer.ff_out.weight"
    return F.linear(x, P(head))[0]


def test_safetensors_roundtrip():
    g = torch.Generator().manual_seed(2)
    T = {
        "a": torch.randn(3, 5, generator=g),
        "b": torch.randn(7, generator=g).to(torch.bfloat16),
        "c": torch.arange(-3, 4, dtype=torch.int32),
        "d": torch.randn(2, 2, generator=g, dtype=torch.float64),
        "e": torch.randn(3, generator=g).half(),
        "f": torch.arange(5, dtype=torch.int64),
    }
    data = st.dumps(T)
    (n,) = struct.unpack("<Q", data[:8])
    check((8 + n) % 8 == 0, "safetensors header padded to a multiple of 8")
    hdr = json.loads(data[8 : 8 + n])
    check(hdr["__metadata__"] == {"format": "pt"}, "safetensors __metadata__ format pt")
    offs = [hdr[k]["data_offsets"] for k in T]
    check(offs[0][0] == 0 and all(a[1] == b[0] for a, b in zip(offs, offs[1:])) and offs[-1][1] == len(data) - 8 - n,
          "safetensors offsets contiguous, in order, cover the body")
    back, _ = st.loads(data)
    check(all(back[k].dtype == T[k].dtype and torch.equal(back[k], T[k]) for k in T), "safetensors round trip exact")
    b_bytes = data[8 + n + hdr["b"]["data_offsets"][0] : 8 + n + hdr["b"]["data_offsets"][1]]
    check(b_bytes == T["b"].view(torch.int16).numpy().tobytes(), "bf16 bytes are the raw int16 view")


def test_fixtures():
    cfgs, weights, refs = {}, {}, {}
    for m in MODELS:
        d = os.path.join(FIX, m)
        with open(os.path.join(d, "config.json")) as f:
            cfgs[m] = json.load(f)
        weights[m] = st.load_dir(d)
        refs[m] = st.load(os.path.join(d, "ref.safetensors"))

    want_mha = dict(make_fixtures.BASE_CONFIG)
    want_gqa = dict(want_mha, **make_fixtures.GQA_OVERRIDES)
    check(cfgs["tiny_mha"] == want_mha and list(cfgs["tiny_mha"]) == list(want_mha), "tiny_mha config.json keys/values")
    check(cfgs["tiny_gqa"] == want_gqa and cfgs["tiny_gqa_sharded"] == want_gqa, "tiny_gqa(_sharded) config.json")

    # Shards hold exactly the single-file tensors, and the index is consistent.
    a, b = weights["tiny_gqa"], weights["tiny_gqa_sharded"]
    check(list(a) == make_fixtures.tensor_names(want_gqa), "tiny_gqa tensor names (tied: no head tensor)")
    check(set(a) == set(b) and all(a[n].dtype == b[n].dtype == torch.bfloat16 and torch.equal(a[n], b[n]) for n in a),
          "sharded tensors == single-file tensors (bf16, bit-exact)")
    idx_path = os.path.join(FIX, "tiny_gqa_sharded", "model.safetensors.index.json")
    with open(idx_path) as f:
        idx = json.load(f)
    shards = sorted(set(idx["weight_map"].values()))
    check(shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], "two shards named HF-style")
    check(idx["metadata"]["total_size"] == sum(t.numel() * 2 for t in a.values()), "index total_size = tensor bytes")
    check(all(t.dtype == torch.float32 for t in weights["tiny_mha"].values())
          and "model.transformer.ff_out.weight" in weights["tiny_mha"], "tiny_mha F32 with untied head")

    for m in MODELS:
        W, cfg, ref = weights[m], cfgs[m], refs[m]
        ids, cu = ref["ids"], ref["cu_seqlens"]
        check(ids.dtype == torch.int32 and cu.tolist() == [0, 7, 19, 24], f"{m}: ids I32 [24], cu_seqlens 0,7,19,24")
        check(int((ids == cfg["mask_token_id"]).sum()) >= 3, f"{m}: ids contain the mask id")
        logits, hidden = R.forward(W, cfg, ids, cu, "fp64", return_hidden=True)
        check(torch.equal(logits.float(), ref["logits"]), f"{m}: logits reproduced from the files on disk")
        check(torch.equal(hidden[0].float(), ref["hidden_after_block0"]), f"{m}: hidden_after_block0 reproduced")
        check(torch.equal(R.forward(W, cfg, ids, cu, "bf16").float(), ref["logits_bf16"]), f"{m}: logits_bf16 reproduced")
        check(torch.equal(ref["single_logits"], ref["logits"][:7]), f"{m}: single_logits == logits[:7] (bit-exact)")
        for a_, b_ in zip(cu[:-1].tolist(), cu[1:].tolist()):
            other = hf_style_forward(W, cfg, ids[a_:b_])
            err = (other - logits[a_:b_]).abs().max().item()
            check(err < 1e-10, f"{m}: HF-style per-sequence forward rows {a_}:{b_} agree ({err:.1e})")
        scale = ref["logits"].std().item()
        print(f"    {m}: logit std {scale:.3f}, max|logits_bf16 - logits| "
              f"{(ref['logits_bf16'] - ref['logits']).abs().max().item():.3g}")


def test_regenerate_identical():
    with tempfile.TemporaryDirectory() as tmp:
        make_fixtures.build(tmp)
        for m in MODELS:
            names = sorted(os.listdir(os.path.join(FIX, m)))
            check(names == sorted(os.listdir(os.path.join(tmp, m))), f"{m}: same file list on regeneration")
            same = all(filecmp.cmp(os.path.join(FIX, m, n), os.path.join(tmp, m, n), shallow=False) for n in names)
            check(same, f"{m}: regenerated files byte-identical")


def main():
    torch.set_num_threads(1)
    test_rope_hand_example()
    test_rmsnorm()
    test_attention()
    test_safetensors_roundtrip()
    test_fixtures()
    test_regenerate_identical()
    # Only the model fixtures this script writes (tokenizer/, generate/, train/ have their own).
    total = sum(os.path.getsize(os.path.join(dp, f))
                for name in ("tiny_mha", "tiny_gqa", "tiny_gqa_sharded")
                for dp, _, fs in os.walk(os.path.join(FIX, name)) for f in fs)
    check(total < 2 * 1024 * 1024, f"model fixtures total {total} bytes < 2 MiB")
    print("all checks passed")


if __name__ == "__main__":
    main()
