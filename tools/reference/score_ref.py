"""Scoring references (docs/numerics.md section 4) on top of llada_ref.

(a) A line-by-line port of the official ML-GSAI/LLaDA `get_log_likelihood.py` Monte-Carlo
    estimator (`forward_process`, `get_logits`, `get_log_likelihood`); identical functions are in
    the official `eval_llada.py` (`_forward_process`, `get_logits`, `get_loglikelihood`). The
    model is `RefLM`: llada_ref behind `model(input).logits`. Randomness is torch's global
    generator, as upstream (`torch.randint`, `torch.randperm`): seed with torch.manual_seed.
(b) `exact_expectation`: the exact expected value of that estimator (any mc_num: every batch has
    the same expectation), by enumeration: k uniform on 1..A, the stratified counts x_i of the
    batch computed with the official expression (float32 `torch.linspace`, `torch.round` = half
    to even, wrapped into 1..A), and for every count x the mean over ALL subsets S of size x of
    the summed cross-entropy on S given S masked:
        E = -(1/A) sum_k (1/b) sum_i (A / x_i) L(x_i).
    Optionally with the official unsupervised CFG on the logits.
(c) `confidence_score`: iLLaDA confidence scoring exactly as docs/numerics.md section 4: mask the whole
    answer; A times run the model, among the still-masked answer positions take the one where
    log p(own token) is highest (lowest index on exact ties), add it, unmask it; it also
    returns the unmasking order and each step's margin. `get_loglikelihood_confidence` is the
    released function itself (eval_illada.py, ML-GSAI/LLaDA PR #134), ported line by line with
    the release's `get_logits` (CFG and `padd_eos`: one EOS appended to every model input);
    the self-checks require both to agree.

Everything runs in llada_ref's float64 mode unless `precision` says otherwise.

    /usr/bin/python3 tools/reference/score_ref.py     # self-checks (~10 s)
"""

import itertools
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llada_ref as R  # noqa: E402
import st  # noqa: E402


class _Out:
    def __init__(self, logits):
        self.logits = logits


class RefLM:
    """llada_ref as an HF-style mask predictor: `model(input).logits`, input [B, L] int64 ->
    logits [B, L, V] (float64 in "fp64" mode). The B rows are packed into one llada_ref.forward
    (each row its own sequence). `device` is CPU; `calls` counts forward calls."""

    def __init__(self, W, cfg, precision="fp64"):
        self.W, self.cfg, self.precision = W, cfg, precision
        self.device = torch.device("cpu")
        self.calls = 0

    @classmethod
    def from_dir(cls, model_dir, precision="fp64"):
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = json.load(f)
        return cls(st.load_dir(model_dir), cfg, precision)

    @property
    def mask_id(self):
        return int(self.cfg["mask_token_id"])

    @property
    def eos_id(self):
        return int(self.cfg["eos_token_id"])

    def __call__(self, input):
        B, L = input.shape
        cu = torch.arange(B + 1, dtype=torch.int64) * L
        logits = R.forward(self.W, self.cfg, input.reshape(-1), cu, self.precision)
        self.calls += 1
        return _Out(logits.view(B, L, -1))


# ============================================================================ (a) official port
# ML-GSAI/LLaDA get_log_likelihood.py, line by line (only `device=` arguments follow the CPU
# tensors; the model is any callable with `.logits` and `.device`).


def forward_process(batch, prompt_index, mask_id):
    b, l = batch.shape

    target_len = (l - prompt_index.sum()).item()
    k = torch.randint(1, target_len + 1, (), device=batch.device)

    x = torch.round(torch.linspace(float(k), k + (b - 1) * (target_len / b), steps=b, device=batch.device)).long()
    x = ((x - 1) % target_len) + 1
    assert x.min() >= 1 and x.max() <= target_len

    indices = torch.arange(target_len, device=batch.device).repeat(b, 1)
    is_mask = indices < x.unsqueeze(1)
    for i in range(b):
        is_mask[i] = is_mask[i][torch.randperm(target_len)]

    is_mask = torch.cat((torch.zeros(b, prompt_index.sum(), dtype=torch.bool, device=batch.device), is_mask), dim=1)
    noisy_batch = torch.where(is_mask, mask_id, batch)

    # Return the masked batch and the mask ratio
    return noisy_batch, (x / target_len).unsqueeze(1).repeat(1, l)


def get_logits(model, batch, prompt_index, cfg_scale, mask_id, padd_eos=False, eos_id=None):
    """get_log_likelihood.py's get_logits, with eval_illada.py's `padd_eos` (its only addition):
    an EOS column appended to every row (the CFG twins included) and the logits of the real
    positions returned."""
    if cfg_scale > 0.:
        assert len(prompt_index) == batch.shape[1]
        prompt_index = prompt_index.unsqueeze(0).repeat(batch.shape[0], 1)
        un_batch = batch.clone()
        un_batch[prompt_index] = mask_id
        batch = torch.cat([batch, un_batch])

    if padd_eos:
        eos = torch.full((batch.shape[0], 1), eos_id, dtype=batch.dtype)
        model_input = torch.cat([batch, eos], dim=-1)
    else:
        model_input = batch
    logits = model(model_input).logits

    if cfg_scale > 0.:
        logits, un_logits = torch.chunk(logits, 2, dim=0)
        logits = un_logits + (cfg_scale + 1) * (logits - un_logits)
    return logits[:, :batch.shape[1]]


@torch.no_grad()
def get_log_likelihood(model, prompt, answer, mc_num=128, batch_size=16, cfg_scale=0., mask_id=126336,
                       padd_eos=False, eos_id=None):
    '''
    Args:
        model: Mask predictor.
        prompt: A tensor of shape (l1).
        answer: A tensor of shape (l2).
        mc_num: Monte Carlo estimation times.
        batch_size: Mini batch size.
        cfg_scale: Unsupervised classifier-free guidance scale.
        mask_id: The toke id of [MASK] is 126336.
    '''
    seq = torch.concatenate([prompt, answer])[None, :]
    seq = seq.repeat((batch_size, 1)).to(model.device)
    prompt_index = torch.arange(seq.shape[1], device=model.device) < len(prompt)

    loss_ = []
    for _ in range(mc_num // batch_size):
        perturbed_seq, p_mask = forward_process(seq, prompt_index, mask_id)
        mask_index = perturbed_seq == mask_id

        logits = get_logits(model, perturbed_seq, prompt_index, cfg_scale, mask_id, padd_eos, eos_id)

        loss = F.cross_entropy(logits[mask_index], seq[mask_index], reduction='none') / p_mask[mask_index]
        loss = loss.sum() / batch_size

        loss_.append(loss.item())

    return - sum(loss_) / len(loss_)


# ============================================================================ (b) exact expectation


def official_counts(k, target_len, b):
    """The stratified mask counts forward_process draws for a given k (its exact expression,
    float32 linspace included)."""
    kt = torch.tensor(k, dtype=torch.int64)
    x = torch.round(torch.linspace(float(kt), kt + (b - 1) * (target_len / b), steps=b)).long()
    x = ((x - 1) % target_len) + 1
    return [int(v) for v in x]


def exact_counts(k, target_len, b):
    """The same counts with the linspace values k + i A / b in float64 (as the C++
    stratified_mask_counts computes them); round half to even."""
    out = []
    for i in range(b):
        v = k + i * (target_len / b) if b > 1 else float(k)
        r = round(v)  # Python round = half to even
        out.append(((r - 1) % target_len) + 1)
    return out


def _ids(t):
    return torch.as_tensor(list(t), dtype=torch.int64)


@torch.no_grad()
def subset_losses(model, prompt, answer, cfg_scale=0.0, padd_eos=False):
    """{x: mean over all subsets S of the answer positions with |S| = x of the summed
    cross-entropy on S, with S masked (prompt never masked)}; CFG and padd_eos as get_logits."""
    mask_id = model.mask_id
    P, A = len(prompt), len(answer)
    seq = _ids(list(prompt) + list(answer))
    subsets = [s for x in range(1, A + 1) for s in itertools.combinations(range(A), x)]
    batch = seq.repeat(len(subsets), 1)
    for r, s in enumerate(subsets):
        for i in s:
            batch[r, P + i] = mask_id
    prompt_index = torch.arange(P + A) < P
    logits = get_logits(model, batch, prompt_index, cfg_scale, mask_id, padd_eos, model.eos_id)
    logp = torch.log_softmax(logits.to(torch.float64), dim=-1)
    acc = {}
    for r, s in enumerate(subsets):
        ce = -sum(float(logp[r, P + i, answer[i]]) for i in s)
        tot, n = acc.get(len(s), (0.0, 0))
        acc[len(s)] = (tot + ce, n + 1)
    return {x: tot / n for x, (tot, n) in acc.items()}


def exact_expectation(model, prompt, answer, batch_size, cfg_scale=0.0, L=None, padd_eos=False):
    """E[get_log_likelihood(...)] for this batch size (no dependence on mc_num)."""
    A = len(answer)
    if L is None:
        L = subset_losses(model, prompt, answer, cfg_scale, padd_eos)
    total = 0.0
    for k in range(1, A + 1):
        xs = official_counts(k, A, batch_size)
        total += sum((A / x) * L[x] for x in xs) / batch_size
    return -total / A


# ============================================================================ (c) confidence


@torch.no_grad()
def confidence_score(model, prompt, answer, cfg_scale=0.0, padd_eos=False):
    """iLLaDA confidence scoring (docs/numerics.md section 4). Returns (sum, normalized, order, gaps):
    order = answer positions in the order they were unmasked, gaps = at each step the margin
    between the best and the second-best candidate log-probability (inf at the last step)."""
    mask_id = model.mask_id
    P, A = len(prompt), len(answer)
    canvas = _ids(list(prompt) + [mask_id] * A)
    prompt_index = torch.arange(P + A) < P
    total, order, gaps = 0.0, [], []
    for _ in range(A):
        logits = get_logits(model, canvas[None, :], prompt_index, cfg_scale, mask_id, padd_eos, model.eos_id)[0]
        logp = torch.log_softmax(logits.to(torch.float64), dim=-1)
        cand = [(float(logp[P + i, answer[i]]), i) for i in range(A) if int(canvas[P + i]) == mask_id]
        best_lp, best_i = cand[0]
        for lp, i in cand[1:]:
            if lp > best_lp:  # strictly greater: lowest index wins exact ties
                best_lp, best_i = lp, i
        others = [lp for lp, i in cand if i != best_i]
        gaps.append(best_lp - max(others) if others else math.inf)
        total += best_lp
        order.append(best_i)
        canvas[P + best_i] = answer[best_i]
    return total, total / A, order, gaps


@torch.no_grad()
def get_loglikelihood_confidence(model, prefix, target, cfg=0.0, padd_eos=False):
    """eval_illada.py ILLaDAEvalHarness.get_loglikelihood_confidence, line by line (self.* of
    the harness as arguments; the model's mask and EOS ids)."""
    mask_id = model.mask_id
    clean_seq = torch.concatenate([prefix, target])[None, :]
    noisy_seq = torch.concatenate([prefix, torch.full_like(target, mask_id)])[None, :]
    prompt_index = torch.arange(noisy_seq.shape[1]) < len(prefix)

    losses = []
    for _ in range(len(target)):
        mask_indices = noisy_seq == mask_id
        logits = get_logits(model, noisy_seq, prompt_index, cfg, mask_id, padd_eos, model.eos_id)
        loss = F.cross_entropy(logits[mask_indices], clean_seq[mask_indices], reduction='none')
        min_loss, min_index = torch.min(loss, dim=-1)
        losses.append(min_loss.item())

        transfer = torch.full_like(clean_seq[mask_indices], mask_id)
        transfer[min_index] = clean_seq[mask_indices][min_index]
        noisy_seq[mask_indices] = transfer

    return -sum(losses)


# ============================================================================ self-checks


def _self_check():
    torch.set_num_threads(1)
    repo = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    m = RefLM.from_dir(os.path.join(repo, "tests", "fixtures", "tiny_gqa"))
    mask = m.mask_id
    ok = True

    def check(cond, what):
        nonlocal ok
        print(("ok   " if cond else "FAIL ") + what)
        ok &= bool(cond)

    # Stratified counts: the official float32 linspace == the float64 formula for these b.
    for A in range(1, 9):
        for b in (1, 2, 4, 8, 16, 32):
            for k in range(1, A + 1):
                if official_counts(k, A, b) != exact_counts(k, A, b):
                    check(False, f"counts A={A} b={b} k={k}")
    check(official_counts(3, 4, 8) == [3, 4, 4, 4, 1, 2, 2, 2], "counts k=3 A=4 b=8 (half to even)")

    # A = 1: the estimator is exact with one sample.
    prompt, answer = [10, 20, 30], [40]
    torch.manual_seed(0)
    est = get_log_likelihood(m, _ids(prompt), _ids(answer), mc_num=1, batch_size=1, mask_id=mask)
    lp = float(torch.log_softmax(m(_ids(prompt + [mask])[None]).logits[0, 3], -1)[40])
    check(abs(est - lp) < 1e-12, f"A=1 estimate {est:.12f} == log p {lp:.12f}")
    check(abs(exact_expectation(m, prompt, answer, 4) - lp) < 1e-12, "A=1 expectation == log p")

    # A = 3, b = 4: MC mean of the port against the enumeration.
    prompt, answer = [7, 8, 9, 11], [12, 13, 14]
    for cfg in (0.0, 1.0):
        E = exact_expectation(m, prompt, answer, 4, cfg)
        torch.manual_seed(1)
        n = 400
        v = [get_log_likelihood(m, _ids(prompt), _ids(answer), 4, 4, cfg, mask) for _ in range(n)]
        mean = sum(v) / n
        se = math.sqrt(sum((e - mean) ** 2 for e in v) / (n - 1) / n)
        check(abs(mean - E) < 4 * se, f"cfg {cfg}: MC mean {mean:.5f} vs exact {E:.5f} (se {se:.5f})")

    # Confidence: each step's pick is the argmax (by construction); sum of logs, A forwards.
    before = m.calls
    s, nrm, order, _ = confidence_score(m, [3, 4, 6], [20, 21, 22])
    check(m.calls - before == 3 and sorted(order) == [0, 1, 2] and abs(nrm - s / 3) < 1e-15,
          f"confidence {s:.6f}, order {order}")
    # The released get_loglikelihood_confidence == confidence_score, with CFG and padd_eos too;
    # and padd_eos really changes the logits (the appended EOS is attended to).
    for cfg in (0.0, 1.5):
        for eos in (False, True):
            s1 = confidence_score(m, [3, 4, 6, 9], [20, 21, 22], cfg, eos)[0]
            s2 = get_loglikelihood_confidence(m, _ids([3, 4, 6, 9]), _ids([20, 21, 22]), cfg, eos)
            check(abs(s1 - s2) < 1e-9, f"released confidence port == confidence_score (cfg {cfg}, eos {eos}): "
                                        f"{s1:.9f} vs {s2:.9f}")
    check(abs(confidence_score(m, [3, 4, 6], [20, 21, 22], 0.0, True)[0] - s) > 1e-6, "padd_eos changes the score")
    print("all ok" if ok else "SOME CHECKS FAILED")
    return ok


if __name__ == "__main__":
    sys.exit(0 if _self_check() else 1)
