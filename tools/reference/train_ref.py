"""PyTorch reference of the masked-diffusion training step (docs/numerics.md section 2), float64 autograd.

Builds on llada_ref.py's forward (fp64 mode). Everything here mirrors src/train/:
  masking    x_t from clean ids, a given t per packed sequence and given mask flags
             (p = (1 - eps) t + eps; a clean token equal to the mask token is never a target;
             optional prompt flags that are never masked);
  loss       sum over target rows of CE(logits, clean) / p_seq, divided by T (tokens in batch);
  AdamW      PyTorch semantics (decoupled decay p *= 1 - lr*wd before the Adam update, bias
             corrected moments, eps outside the sqrt), no decay on norm weights, gradients
             clipped by global L2 norm (scale = min(1, max_norm / (norm + 1e-6)));
  schedules  the pre-training (warm-up, constant, cosine to a minimum) and SFT (warm-up,
             constant, linear decay over the last 10% of steps) learning rates.
"""

import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llada_ref  # noqa: E402


def corrupt(clean, cu, t, mask, mask_token_id, eps=1e-3, prompt=None):
    """-> (x_t [T], target_rows [M], targets [M], p_row [M]) for clean ids [T] (int64)."""
    clean = torch.as_tensor(clean, dtype=torch.int64)
    xt = clean.clone()
    rows, targets, prow = [], [], []
    for s, (a, b) in enumerate(zip(cu.tolist(), cu.tolist()[1:])):
        p = (1.0 - eps) * float(t[s]) + eps
        for i in range(a, b):
            if prompt is not None and prompt[i]:
                continue
            if int(clean[i]) == mask_token_id or not bool(mask[i]):
                continue
            xt[i] = mask_token_id
            rows.append(i)
            targets.append(int(clean[i]))
            prow.append(p)
    return (xt, torch.tensor(rows, dtype=torch.int64), torch.tensor(targets, dtype=torch.int64),
            torch.tensor(prow, dtype=torch.float64))


def diffusion_loss(W, cfg, xt, cu, rows, targets, prow):
    """Masked-diffusion loss in float64: sum_i CE(logits[rows[i]], targets[i]) / p_i / T."""
    logits = llada_ref.forward(W, cfg, xt, cu, "fp64")
    T = xt.shape[0]
    if rows.numel() == 0:
        return logits.sum() * 0.0
    ce = torch.nn.functional.cross_entropy(logits[rows], targets, reduction="none")
    return (ce / prow).sum() / T


def leaf_params(W):
    """float64 leaf tensors with requires_grad, same names."""
    return {n: t.detach().to(torch.float64).clone().requires_grad_(True) for n, t in W.items()}


def loss_and_grads(W64, cfg, batch):
    for t in W64.values():
        t.grad = None
    loss = diffusion_loss(W64, cfg, *batch)
    loss.backward()
    return loss.item(), {n: t.grad.detach().clone() for n, t in W64.items()}


# ----------------------------------------------------------------------------- schedules


def pretrain_lr(step, peak, minimum, warmup, decay_start, decay_steps):
    """Step 0-based. Warm-up: peak * (step + 1) / warmup; constant until decay_start; then
    cosine from peak to minimum over decay_steps; minimum afterwards."""
    if step < warmup:
        return peak * (step + 1) / warmup
    if step < decay_start:
        return peak
    k = step - decay_start
    if k >= decay_steps:
        return minimum
    return minimum + 0.5 * (peak - minimum) * (1.0 + math.cos(math.pi * k / decay_steps))


def sft_lr(step, peak, final, warmup, total_steps, decay_fraction=0.1):
    """Warm-up as above; constant; over the last round(decay_fraction * total) steps (at
    least 1) linear decay that reaches `final` at the last step."""
    decay_steps = max(1, int(math.floor(decay_fraction * total_steps + 0.5)))
    decay_start = total_steps - decay_steps
    if step < warmup:
        return peak * (step + 1) / warmup
    if step < decay_start:
        return peak
    k = min(step - decay_start + 1, decay_steps)
    return peak + (final - peak) * k / decay_steps


# ----------------------------------------------------------------------------- AdamW


def adamw_run(W, cfg, batch, steps, lr_fn, beta1, beta2, eps, weight_decay, max_norm,
              no_decay=lambda name: name.endswith("norm.weight") or name.endswith("ln_f.weight")):
    """`steps` AdamW steps on the same batch in float64; returns the loss before each step."""
    P = leaf_params(W)
    m = {n: torch.zeros_like(t) for n, t in P.items()}
    v = {n: torch.zeros_like(t) for n, t in P.items()}
    losses = []
    for s in range(steps):
        loss, grads = loss_and_grads(P, cfg, batch)
        losses.append(loss)
        norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))
        scale = min(1.0, max_norm / (norm + 1e-6)) if max_norm > 0 else 1.0
        lr = lr_fn(s)
        b1c = 1.0 - beta1 ** (s + 1)
        b2c = 1.0 - beta2 ** (s + 1)
        with torch.no_grad():
            for n, p in P.items():
                g = grads[n] * scale
                if not no_decay(n):
                    p.mul_(1.0 - lr * weight_decay)
                m[n].mul_(beta1).add_(g, alpha=1.0 - beta1)
                v[n].mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
                denom = (v[n] / b2c).sqrt().add_(eps)
                p.addcdiv_(m[n], denom, value=-lr / b1c)
    return losses
