"""Write the training fixtures tests/fixtures/train/{tiny_mha,tiny_gqa}.safetensors.

    python3 tools/reference/make_train_fixtures.py [out_dir]   # default: tests/fixtures/train

For each tiny model of tests/fixtures/ (weights read from there): a packed batch of three
documents with fixed clean ids (one clean token equal to the mask token, which must not be a
target), fixed t per document and fixed mask flags; the float64 masked-diffusion loss and
every parameter's gradient; and the losses of 10 AdamW steps on that batch under the
pre-training schedule with gradient clipping active.

Tensors: ids I32 [T] (clean), cu_seqlens I32 [S+1], t F64 [S], mask U8 [T], loss F64 [1],
grad.<param name> F32 (one per tensor of the checkpoint; a tied head's gradient is in wte's),
adamw F64 [10] = (peak_lr, min_lr, warmup, decay_start, decay_steps, beta1, beta2, eps,
weight_decay, max_grad_norm), losses F64 [10].
"""

import json
import os
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st  # noqa: E402
import train_ref  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SEQ_LENS = (9, 14, 6)
T_VALUES = (0.35, 0.8, 0.55)
ADAMW = dict(peak=2e-3, minimum=2e-4, warmup=3, decay_start=5, decay_steps=4,
             beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, max_norm=0.5)
STEPS = 10


def make_batch(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    V = cfg["vocab_size"]
    cu = [0]
    for L in SEQ_LENS:
        cu.append(cu[-1] + L)
    T = cu[-1]
    ids = torch.randint(0, V, (T,), generator=g, dtype=torch.int64)
    ids[cu[1] + 2] = cfg["mask_token_id"]  # a clean mask token: never a target
    mask = torch.zeros(T, dtype=torch.uint8)
    u = torch.rand(T, generator=g, dtype=torch.float64)
    for s, (a, b) in enumerate(zip(cu, cu[1:])):
        p = (1 - 1e-3) * T_VALUES[s] + 1e-3
        mask[a:b] = (u[a:b] < p).to(torch.uint8)
        mask[a] = 1  # at least one masked token per document
    mask[cu[1] + 2] = 1  # flagged, but its clean token is the mask token
    return ids, torch.tensor(cu, dtype=torch.int64), torch.tensor(T_VALUES, dtype=torch.float64), mask


def build_one(model_dir, out_path, seed):
    torch.set_num_threads(1)
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    W = st.load_dir(model_dir)
    ids, cu, t, mask = make_batch(cfg, seed)
    batch = train_ref.corrupt(ids, cu, t, mask, cfg["mask_token_id"])
    xt, rows, targets, prow = batch
    assert cu[1] + 2 not in rows.tolist()
    W64 = train_ref.leaf_params(W)
    loss, grads = train_ref.loss_and_grads(W64, cfg, (xt, cu, rows, targets, prow))
    a = ADAMW
    lr_fn = lambda s: train_ref.pretrain_lr(s, a["peak"], a["minimum"], a["warmup"],  # noqa: E731
                                            a["decay_start"], a["decay_steps"])
    norm = sum(float((g * g).sum()) for g in grads.values()) ** 0.5
    losses = train_ref.adamw_run(W, cfg, (xt, cu, rows, targets, prow), STEPS, lr_fn, a["beta1"],
                                 a["beta2"], a["eps"], a["weight_decay"], a["max_norm"])
    out = {
        "ids": ids.to(torch.int32),
        "cu_seqlens": cu.to(torch.int32),
        "t": t,
        "mask": mask,
        "loss": torch.tensor([loss], dtype=torch.float64),
    }
    for n, g in grads.items():
        out["grad." + n] = g.to(torch.float32)
    out["adamw"] = torch.tensor([a["peak"], a["minimum"], a["warmup"], a["decay_start"],
                                 a["decay_steps"], a["beta1"], a["beta2"], a["eps"],
                                 a["weight_decay"], a["max_norm"]], dtype=torch.float64)
    out["losses"] = torch.tensor(losses, dtype=torch.float64)
    st.save(out_path, out)
    return {"targets": int(rows.numel()), "T": int(ids.numel()), "loss": loss, "grad_norm": norm,
            "losses": [round(x, 5) for x in losses]}


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "tests", "fixtures", "train")
    os.makedirs(out_dir, exist_ok=True)
    for name, seed in (("tiny_mha", 11), ("tiny_gqa", 22)):
        stats = build_one(os.path.join(REPO, "tests", "fixtures", name),
                          os.path.join(out_dir, name + ".safetensors"), seed)
        print(name, stats, os.path.getsize(os.path.join(out_dir, name + ".safetensors")), "bytes")


if __name__ == "__main__":
    main()
