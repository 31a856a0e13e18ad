"""Write the tiny-model fixtures under tests/fixtures/ (deterministic, byte-identical on rerun).

    /usr/bin/python3 tools/reference/make_fixtures.py [out_dir]   # default: tests/fixtures

tiny_mha/          untied LLaDA-style model, n_kv_heads == n_heads, F32 weights
tiny_gqa/          tied iLLaDA-style model, grouped-query attention, BF16 weights
tiny_gqa_sharded/  tiny_gqa's weights split into two shards + model.safetensors.index.json
Each has config.json, the weights and ref.safetensors (packed ids, cu_seqlens, logits from
the float64 forward, logits_bf16 from the bf16-matmul forward, single_logits for the first
sequence alone, hidden_after_block0).
"""

import json
import math
import os
import sys

import torch

sys.dont_write_bytecode = True  # keep __pycache__ out of the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llada_ref  # noqa: E402
import st  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

BASE_CONFIG = {
    "architectures": ["LLaDAModelLM"],
    "model_type": "llada",
    "d_model": 64,
    "n_layers": 2,
    "n_heads": 4,
    "n_kv_heads": 4,
    "mlp_hidden_size": 96,
    "vocab_size": 128,
    "embedding_size": 128,
    "max_sequence_length": 256,
    "rope_theta": 10000.0,
    "rms_norm_eps": 1e-5,
    "weight_tying": False,
    "mask_token_id": 126,
    "eos_token_id": 1,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "activation_type": "silu",
    "block_type": "llama",
    "layer_norm_type": "rms",
    "include_bias": False,
    "rope": True,
    "scale_logits": False,
    "input_emb_norm": False,
}

GQA_OVERRIDES = {
    "n_kv_heads": 2,
    "weight_tying": True,
    "rope_theta": 500000.0,
    "mask_token_id": 5,
    "mlp_hidden_size": 160,
    "n_layers": 3,
}

SEQ_LENS = (7, 12, 5)  # packed batch, T = 24
BLOCK_FIELDS = (
    "attn_norm", "ff_norm", "q_proj", "k_proj", "v_proj", "attn_out", "ff_proj", "up_proj", "ff_out",
)


def tensor_names(cfg):
    """Every parameter name in a fixed order (also the order inside the safetensors files)."""
    names = ["model.transformer.wte.weight"]
    for i in range(cfg["n_layers"]):
        names += [f"model.transformer.blocks.{i}.{f}.weight" for f in BLOCK_FIELDS]
    names.append("model.transformer.ln_f.weight")
    if not cfg["weight_tying"]:
        names.append("model.transformer.ff_out.weight")
    return names


def init_weights(cfg, seed, emb_std, head_gain=1.0):
    """Linear weights N(0, 1/fan_in), embedding N(0, emb_std^2), norm weights 1 + 0.1 N(0,1);
    the untied head gets N(0, head_gain^2/fan_in) so logits are not too flat."""
    D = llada_ref.dims(cfg)
    d, hd, mlp, V = D["d"], D["hd"], D["mlp"], D["vocab"]
    shapes = {"model.transformer.wte.weight": (V, d), "model.transformer.ln_f.weight": (d,)}
    for i in range(D["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        shapes.update({
            p + "attn_norm.weight": (d,),
            p + "ff_norm.weight": (d,),
            p + "q_proj.weight": (D["n_heads"] * hd, d),
            p + "k_proj.weight": (D["n_kv"] * hd, d),
            p + "v_proj.weight": (D["n_kv"] * hd, d),
            p + "attn_out.weight": (d, D["n_heads"] * hd),
            p + "ff_proj.weight": (mlp, d),
            p + "up_proj.weight": (mlp, d),
            p + "ff_out.weight": (d, mlp),
        })
    if not D["tied"]:
        shapes["model.transformer.ff_out.weight"] = (V, d)

    g = torch.Generator().manual_seed(seed)
    W = {}
    for name in tensor_names(cfg):
        shape = shapes[name]
        z = torch.randn(shape, generator=g, dtype=torch.float32)
        if len(shape) == 1:
            W[name] = 1.0 + 0.1 * z
        elif name == "model.transformer.wte.weight":
            W[name] = emb_std * z
        elif name == "model.transformer.ff_out.weight":
            W[name] = head_gain * z / math.sqrt(shape[1])
        else:
            W[name] = z / math.sqrt(shape[1])
    return W


def make_ids(cfg, seed):
    """Packed ids [T] (I32) with ~30% of each sequence set to the mask token, and cu_seqlens."""
    g = torch.Generator().manual_seed(seed)
    V = llada_ref.dims(cfg)["vocab"]
    cu = [0]
    for L in SEQ_LENS:
        cu.append(cu[-1] + L)
    ids = torch.randint(0, V, (cu[-1],), generator=g, dtype=torch.int64)
    for a, L in zip(cu, SEQ_LENS):
        n_mask = math.ceil(0.3 * L)
        pick = torch.randperm(L, generator=g)[:n_mask]
        ids[a + pick] = cfg["mask_token_id"]
    return ids.to(torch.int32), torch.tensor(cu, dtype=torch.int32)


def reference_outputs(W, cfg, ids, cu):
    logits, hidden = llada_ref.forward(W, cfg, ids, cu, "fp64", return_hidden=True)
    logits_bf16 = llada_ref.forward(W, cfg, ids, cu, "bf16")
    L0 = int(cu[1])
    single = llada_ref.forward(W, cfg, ids[:L0], torch.tensor([0, L0]), "fp64")
    # A sequence alone must give exactly what it gives inside the packed batch:
    # proves there is no cross-sequence attention and that positions restart at 0.
    diff = (single - logits[:L0]).abs().max().item()
    assert diff < 1e-10, f"single-sequence logits differ from packed rows by {diff}"
    logits_fp32 = llada_ref.forward(W, cfg, ids, cu, "fp32")
    stats = {
        "logit_std": logits.std().item(),
        "max|fp32-fp64|": (logits_fp32 - logits).abs().max().item(),
        "max|bf16-fp64|": (logits_bf16 - logits).abs().max().item(),
        "single_vs_packed": diff,
    }
    ref = {
        "ids": ids,
        "cu_seqlens": cu,
        "logits": logits.float(),
        "logits_bf16": logits_bf16.float(),
        "single_logits": single.float(),
        "hidden_after_block0": hidden[0].float(),
    }
    return ref, stats


def write_config(path, cfg):
    with open(path, "w") as f:
        f.write(json.dumps(cfg, indent=2) + "\n")


def write_model(out, cfg, W, dtype, shards=1):
    """Single model.safetensors, or `shards` files + model.safetensors.index.json."""
    os.makedirs(out, exist_ok=True)
    write_config(os.path.join(out, "config.json"), cfg)
    T = {n: W[n].to(dtype) for n in tensor_names(cfg)}
    if shards == 1:
        st.save(os.path.join(out, "model.safetensors"), T)
        return
    names = list(T)
    nbytes = {n: T[n].numel() * T[n].element_size() for n in names}
    total = sum(nbytes.values())
    # Cut the fixed name order into `shards` contiguous runs of roughly equal byte size.
    groups, cur, acc = [], [], 0
    for n in names:
        cur.append(n)
        acc += nbytes[n]
        if acc >= total * (len(groups) + 1) / shards and len(groups) < shards - 1:
            groups.append(cur)
            cur = []
    groups.append(cur)
    assert len(groups) == shards and all(groups)
    weight_map = {}
    for k, group in enumerate(groups):
        fname = f"model-{k + 1:05d}-of-{shards:05d}.safetensors"
        st.save(os.path.join(out, fname), {n: T[n] for n in group})
        weight_map.update({n: fname for n in group})
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        f.write(json.dumps(index, indent=2) + "\n")


def build(out_root):
    torch.set_num_threads(1)  # fixed summation order -> byte-identical reruns
    results = {}

    # tiny_mha: untied, n_kv == n_heads, F32 weights.
    cfg = dict(BASE_CONFIG)
    W = init_weights(cfg, seed=1234, emb_std=1.0, head_gain=2.5)
    ids, cu = make_ids(cfg, seed=4321)
    ref, stats = reference_outputs(W, cfg, ids, cu)
    d = os.path.join(out_root, "tiny_mha")
    write_model(d, cfg, W, torch.float32)
    st.save(os.path.join(d, "ref.safetensors"), ref)
    results["tiny_mha"] = stats

    # tiny_gqa: tied, GQA, BF16 weights; the reference uses the bf16-rounded weights.
    cfg = dict(BASE_CONFIG)
    cfg.update(GQA_OVERRIDES)
    # Tied head: logits = ln_f(x) . wte[v] ~ emb_std * sqrt(d), so shrink the embedding.
    W = init_weights(cfg, seed=5678, emb_std=0.4)
    W = {n: t.to(torch.bfloat16) for n, t in W.items()}
    ids, cu = make_ids(cfg, seed=8765)
    ref, stats = reference_outputs(W, cfg, ids, cu)
    for name in ("tiny_gqa", "tiny_gqa_sharded"):
        d = os.path.join(out_root, name)
        write_model(d, cfg, W, torch.bfloat16, shards=2 if name.endswith("sharded") else 1)
        st.save(os.path.join(d, "ref.safetensors"), ref)
        results[name] = stats
    return results


def main():
    out_root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "tests", "fixtures")
    results = build(out_root)
    for name, s in results.items():
        print(f"{name}: " + ", ".join(f"{k} {v:.3g}" for k, v in s.items()))
    total = 0
    for dirpath, _, files in sorted(os.walk(out_root)):
        for fn in sorted(files):
            size = os.path.getsize(os.path.join(dirpath, fn))
            total += size
            print(f"  {os.path.relpath(os.path.join(dirpath, fn), out_root)}: {size} bytes")
    print(f"total {total} bytes")


if __name__ == "__main__":
    main()
