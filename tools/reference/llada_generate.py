"""Reference ports of the LLaDA / Fast-dLLM samplers, driving `llada_ref` (docs/numerics.md section 3).

    /usr/bin/python3 tools/reference/llada_generate.py      # self-checks (~10 s)

Ported line by line (same control flow, same tensor ops, batch dim kept) from
  * ML-GSAI/LLaDA `generate.py`: `add_gumbel_noise`, `get_num_transfer_tokens`, `generate`
    (the current version, with `logits_eos_inf` / `confidence_eos_eot_inf` and CFG);
  * NVlabs/Fast-dLLM `llada/generate.py`: `generate` (threshold / factor),
    `generate_with_prefix_cache`, `generate_with_dual_cache`, `get_transfer_index`,
    `get_transfer_index_dynamic`, with the KV-cache semantics of its `model/modeling_llada.py`
    (`past_key_values`, `use_cache`, `replace_position`) reproduced by `llada_ref.forward_kv`;
  * ML-GSAI/LLaDA pull request #134 (iLLaDA's release: `generate.py` with `var_generate`,
    `apply_end_think_logit_boost` and its sequence helpers; read through the search tools in the
    forks that carry it): `var_generate`, `generate` with the
    end-of-thinking boost.

What the ports do NOT take over: `attention_mask` (left padding for batches of unequal
prompts; batch size 1 needs none), `step_callback`, the `is_mps` float32 branch of older
LLaDA versions, device handling. The model is `RefModel`: `model(x)` -> logits [B, L, V].

Semantics a port must copy (see also tools/reference/README.md):
  * torch.argmax returns the FIRST index of the maximum (documented), so argmax ties go to the
    smallest token id.
  * torch.topk on ties returns an unspecified order (on this torch build topk([.5,.9,.9,.1,.9], 2)
    picks indices 2 and 4, not 1 and 2); the official code therefore has no defined tie rule.
    The fixtures are built in float64 and record the smallest confidence gap at every commit
    boundary, so no case depends on a tie.
  * The mask id is NOT excluded from argmax. If the argmax at a committed position is the mask
    id, the position "commits" the mask token and simply stays masked (and is picked up again
    by later steps). The fixtures record whether that ever happened (it does not in any case).
"""

import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.dont_write_bytecode = True  # keep __pycache__ out of the tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llada_ref as R  # noqa: E402
import st  # noqa: E402

LLADA_EOS_ID = 126081  # hard-coded in the official generate() (LLaDA-8B's <|endoftext|>)
LLADA_EOT_ID = 126348  # hard-coded in the official generate() (LLaDA-8B's <|eot_id|>)


# ----------------------------------------------------------------------------- the model


class RefModel:
    """`llada_ref` behind the call signatures the samplers use.

    model(x)                          x [B, L] int64 -> logits [B, L, V]; the B rows are packed
                                      into one llada_ref.forward (CFG's [x; un_x] batch is one
                                      call). Logits are float64 in "fp64" mode, float32 in the
                                      "fp32" and "bf16" modes.
    model.cached(x)                   the same, plus each row's per-layer (k, v) (use_cache=True)
    model.with_prefix(x_tail, start, caches)   Fast-dLLM `model(x[:, start:], past_key_values=...)`
    model.with_replace(x_block, start, caches) Fast-dLLM `model(x[:, start:end], past_key_values=...,
                                               replace_position=[start, end))`
    `calls` counts forward calls (each call = one NFE, whatever its batch).
    """

    def __init__(self, W, cfg, precision="fp64"):
        if precision not in R.PRECISIONS:
            raise ValueError(precision)
        self.W, self.cfg, self.precision = W, cfg, precision
        self.calls = 0
        self.rows = 0  # sequences run (a CFG call runs 2)

    @classmethod
    def from_dir(cls, model_dir, precision="fp64"):
        with open(os.path.join(model_dir, "config.json")) as f:
            cfg = json.load(f)
        return cls(st.load_dir(model_dir), cfg, precision)

    def __call__(self, x):
        B, L = x.shape
        cu = torch.arange(B + 1, dtype=torch.int64) * L
        logits = R.forward(self.W, self.cfg, x.reshape(-1), cu, self.precision)
        self.calls += 1
        self.rows += B
        return logits.view(B, L, -1)

    def cached(self, x):
        outs = [R.forward_kv(self.W, self.cfg, row, precision=self.precision) for row in x]
        self.calls += 1
        self.rows += x.shape[0]
        return torch.stack([o[0] for o in outs]), [o[1] for o in outs]

    def with_prefix(self, x_tail, start, caches):
        outs = [
            R.forward_kv(self.W, self.cfg, row, start, cache, "prefix", self.precision)
            for row, cache in zip(x_tail, caches)
        ]
        self.calls += 1
        self.rows += x_tail.shape[0]
        return torch.stack([o[0] for o in outs])

    def with_replace(self, x_block, start, caches):
        outs = [
            R.forward_kv(self.W, self.cfg, row, start, cache, "replace", self.precision)
            for row, cache in zip(x_block, caches)
        ]
        self.calls += 1
        self.rows += x_block.shape[0]
        return torch.stack([o[0] for o in outs])


# ----------------------------------------------------------------------------- statistics


class Stats:
    """Robustness margins seen while sampling (temperature 0 only).

    top2_gap   smallest (logit of the committed token - best other logit) over every committed
               position, in the logits the argmax ran on (after CFG / EOS -inf).
    conf_gap   smallest margin of a commit decision: for top-k, the k-th largest candidate
               confidence minus the (k+1)-th; for a threshold, |confidence - tau| of every
               candidate but the most confident one (plus top1 - top2 when top1 < tau); for the
               factor rule, |sorted_conf[n] - (1 - factor/(n+2))| of every compared entry plus
               the top-k gap at the cut.
    committed_mask  how many committed tokens were the mask id.
    factor_quirk    factor-rule steps where the LAST sorted candidate failed its threshold and
                    was committed anyway (see get_transfer_index_dynamic).
    """

    def __init__(self):
        self.top2_gap = math.inf
        self.conf_gap = math.inf
        self.committed_mask = 0
        self.commits_per_step = []
        self.factor_quirk = 0

    def argmax_gap(self, logits_row, x0_row, committed):
        """logits_row [L, V] (argmax input), x0_row [L], committed [L] bool."""
        for pos in committed.nonzero(as_tuple=True)[0].tolist():
            lv = logits_row[pos].double()
            tok = int(x0_row[pos])
            other = torch.cat([lv[:tok], lv[tok + 1 :]]).max().item()
            self.top2_gap = min(self.top2_gap, lv[tok].item() - other)

    def topk_gap(self, conf_row, k):
        c = conf_row[torch.isfinite(conf_row)].double().sort(descending=True)[0]
        k = int(k)
        if 0 < k < c.numel():
            self.conf_gap = min(self.conf_gap, (c[k - 1] - c[k]).item())

    def threshold_gap(self, conf_row, tau):
        c = conf_row[torch.isfinite(conf_row)].double().sort(descending=True)[0]
        if c.numel() > 1:
            self.conf_gap = min(self.conf_gap, (c[1:] - tau).abs().min().item())
            if c[0] < tau:
                self.conf_gap = min(self.conf_gap, (c[0] - c[1]).item())

    def factor_gap(self, sorted_conf, threshs, checked, k):
        for n in range(1, checked + 1):
            if n < len(threshs):
                self.conf_gap = min(self.conf_gap, abs(float(sorted_conf[n]) - threshs[n]))
        if 0 < k < len(sorted_conf):
            self.conf_gap = min(self.conf_gap, float(sorted_conf[k - 1] - sorted_conf[k]))

    def commit(self, x0, transfer_index, mask_id):
        self.committed_mask += int((x0[transfer_index] == mask_id).sum())
        self.commits_per_step.append(int(transfer_index.sum()))


# ----------------------------------------------------------------------------- ML-GSAI/LLaDA


def add_gumbel_noise(logits, temperature, generator=None):
    """Official: temperature 0 returns `logits` itself (no copy, no cast; the in-place edits of
    `confidence_eos_eot_inf` below rely on that aliasing). Otherwise Gumbel-max in float64:
    exp(logits) / (-log u)^temperature, u ~ U[0, 1) from torch.rand_like (global RNG in the
    original; `generator` here only for reproducible experiments)."""
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    if generator is None:
        noise = torch.rand_like(logits, dtype=torch.float64)
    else:
        noise = torch.rand(logits.shape, dtype=torch.float64, generator=generator)
    gumbel_noise = (-torch.log(noise)) ** temperature
    return logits.exp() / gumbel_noise


def get_num_transfer_tokens(mask_index, steps):
    """Tokens to commit at each of `steps` steps: base = masks // steps everywhere, and the
    FIRST masks % steps steps get one more (int64). Trailing zeros when steps > masks."""
    mask_num = mask_index.sum(dim=1, keepdim=True)
    base = mask_num // steps
    remainder = mask_num % steps
    num_transfer_tokens = torch.zeros(mask_num.size(0), steps, dtype=torch.int64) + base
    for i in range(mask_num.size(0)):
        num_transfer_tokens[i, : remainder[i]] += 1
    return num_transfer_tokens


def _eos_eot_inf(reading, logits, x0_p, x0, eos_id, eot_id):
    """Two MISreadings of `confidence_eos_eot_inf`, for fixture selection only:
    "eot_only"    only logits[..., eot] = -inf (what the official line does at temperature > 0);
    "confidence"  the docstring's intent: confidence of an x0 equal to EOS or EoT = -inf."""
    if reading == "eot_only" and logits is not None:
        logits[:, :, eot_id] = -torch.inf
    elif reading == "confidence" and x0_p is not None:
        x0_p[(x0 == eos_id) | (x0 == eot_id)] = -np.inf
    elif reading not in ("eot_only", "confidence"):
        raise ValueError(reading)


def contains_token_sequence(tokens, sequence):
    """Released generate.py (PR #134): does the 1-D `tokens` hold `sequence` contiguously?"""
    n = sequence.numel()
    if n == 0 or tokens.numel() < n:
        return False
    for start in range(tokens.numel() - n + 1):
        if torch.equal(tokens[start:start + n], sequence):
            return True
    return False


def get_next_sequence_token_id(tokens, position, sequence, context_start):
    """Released: the token of `sequence` after its longest proper prefix that ends right before
    `position` (looking back no further than context_start), else its first token."""
    longest = min(sequence.numel() - 1, position - context_start)
    for k in range(longest, 0, -1):
        if torch.equal(tokens[position - k:position], sequence[:k]):
            return sequence[k].item()
    return sequence[0].item()


def apply_end_think_logit_boost(logits, tokens, candidate_mask_index, context_start, total_gen_length,
                                end_think_token_ids=None, end_think_logit_boost=0.0,
                                end_think_boost_power=2.0):
    """Released apply_end_think_logit_boost: per row, unless the answer (tokens[context_start:])
    already holds the sequence, add boost * progress**power to the logit of the sequence's next
    token at the row's FIRST candidate position; progress = (position - context_start + 1) /
    total_gen_length clamped to [0, 1]. Returns a copy (or `logits` itself when off)."""
    if end_think_logit_boost <= 0 or not end_think_token_ids or total_gen_length <= 0:
        return logits
    if any(t < 0 or t >= logits.shape[-1] for t in end_think_token_ids):
        return logits
    sequence = torch.tensor(end_think_token_ids, dtype=torch.long)
    logits = logits.clone()
    for b in range(tokens.shape[0]):
        if contains_token_sequence(tokens[b, context_start:], sequence):
            continue
        candidates = torch.nonzero(candidate_mask_index[b], as_tuple=False).flatten()
        if candidates.numel() == 0:
            continue
        position = candidates[0].item()
        progress = min(max((position - context_start + 1) / float(total_gen_length), 0.0), 1.0)
        boost = end_think_logit_boost * (progress ** end_think_boost_power)
        token_id = get_next_sequence_token_id(tokens[b], position, sequence, context_start)
        logits[b, position, token_id] += boost
    return logits


@torch.no_grad()
def generate(model, prompt, steps=128, gen_length=128, block_length=128, temperature=0.0,
             cfg_scale=0.0, remasking="low_confidence", mask_id=126336, logits_eos_inf=False,
             confidence_eos_eot_inf=False, eos_id=LLADA_EOS_ID, eot_id=LLADA_EOT_ID,
             end_think_token_ids=None, end_think_logit_boost=0.0, end_think_boost_power=2.0,
             end_think_context_start=None, end_think_total_gen_length=None,
             stats=None, generator=None, _eos_eot_reading="official"):
    """ML-GSAI/LLaDA generate() as released with iLLaDA (PR #134, end-of-thinking boost
    included). Returns (x [B, P + gen_length], nfe); nfe = model calls = steps (a call with CFG
    runs the batch [x; un_x], i.e. 2 sequences).
    `eos_id` / `eot_id` stand for the ids 126081 / 126348 the original hard-codes.
    `_eos_eot_reading` is not in the original: make_generate_fixtures.py uses "eot_only" and
    "confidence" (see _eos_eot_inf) to pick prompts on which misreadings of
    confidence_eos_eot_inf give different tokens."""
    x = torch.full((prompt.shape[0], prompt.shape[1] + gen_length), mask_id, dtype=torch.long)
    x[:, : prompt.shape[1]] = prompt.clone()

    # CFG's "prompt" = every initially unmasked position (a mask id inside the prompt is not
    # part of it and is also generated, like any mask).
    prompt_index = x != mask_id

    assert gen_length % block_length == 0
    num_blocks = gen_length // block_length

    assert steps % num_blocks == 0
    steps = steps // num_blocks

    if end_think_context_start is None:
        end_think_context_start = prompt.shape[1]
    if end_think_total_gen_length is None:
        end_think_total_gen_length = gen_length

    nfe = 0
    for num_block in range(num_blocks):
        block_mask_index = (
            x[:, prompt.shape[1] + num_block * block_length : prompt.shape[1] + (num_block + 1) * block_length]
            == mask_id
        )
        num_transfer_tokens = get_num_transfer_tokens(block_mask_index, steps)
        for i in range(steps):
            mask_index = x == mask_id
            block_start = prompt.shape[1] + num_block * block_length
            block_end = prompt.shape[1] + (num_block + 1) * block_length
            candidate_mask_index = mask_index.clone()
            candidate_mask_index[:, :block_start] = False
            candidate_mask_index[:, block_end:] = False
            if cfg_scale > 0.0:
                un_x = x.clone()
                un_x[prompt_index] = mask_id
                x_ = torch.cat([x, un_x], dim=0)
                logits = model(x_)
                logits, un_logits = torch.chunk(logits, 2, dim=0)
                # exactly this expression: u + (s + 1) * (c - u)
                logits = un_logits + (cfg_scale + 1) * (logits - un_logits)
            else:
                logits = model(x)
            nfe += 1

            logits = apply_end_think_logit_boost(
                logits, x, candidate_mask_index, end_think_context_start, end_think_total_gen_length,
                end_think_token_ids=end_think_token_ids, end_think_logit_boost=end_think_logit_boost,
                end_think_boost_power=end_think_boost_power)

            if logits_eos_inf:
                logits[:, :, eos_id] = -torch.inf

            logits_with_noise = add_gumbel_noise(logits, temperature, generator)
            x0 = torch.argmax(logits_with_noise, dim=-1)  # b, l; first index on ties
            if stats is not None and temperature == 0:
                argmax_input = logits_with_noise.clone()

            if confidence_eos_eot_inf and _eos_eot_reading == "official":
                # Copied as written. Python assigns chained targets left to right:
                # logits_with_noise[..., eos] = -inf, then logits[..., eot] = -inf. At
                # temperature 0 logits_with_noise IS logits, so both the EOS and the EoT logit
                # of `logits` become -inf; at temperature > 0 only EoT does. x0 is already
                # chosen, so this only changes the confidences below: p is renormalised
                # without those tokens and an x0 equal to them gets confidence 0 (not -inf).
                logits_with_noise[:, :, eos_id] = logits[:, :, eot_id] = -torch.inf
            elif confidence_eos_eot_inf:
                _eos_eot_inf(_eos_eot_reading, logits, None, x0, eos_id, eot_id)

            if remasking == "low_confidence":
                # Current official code: softmax in the logits' own dtype (bf16 for a bf16
                # model; an older version and Fast-dLLM cast to float64 first).
                p = F.softmax(logits, dim=-1)
                x0_p = torch.squeeze(torch.gather(p, dim=-1, index=torch.unsqueeze(x0, -1)), -1)  # b, l
            elif remasking == "random":
                x0_p = torch.rand((x0.shape[0], x0.shape[1]), dtype=torch.float32)
            else:
                raise NotImplementedError(remasking)

            if confidence_eos_eot_inf and _eos_eot_reading != "official":
                _eos_eot_inf(_eos_eot_reading, None, x0_p, x0, eos_id, eot_id)
            x0_p[:, prompt.shape[1] + (num_block + 1) * block_length :] = -np.inf

            x0 = torch.where(mask_index, x0, x)
            confidence = torch.where(mask_index, x0_p, torch.tensor(-np.inf, dtype=x0_p.dtype))

            transfer_index = torch.zeros_like(x0, dtype=torch.bool)
            for j in range(confidence.shape[0]):
                _, select_index = torch.topk(confidence[j], k=int(num_transfer_tokens[j, i]))
                transfer_index[j, select_index] = True
                if stats is not None and temperature == 0:
                    stats.topk_gap(confidence[j], num_transfer_tokens[j, i])
                    stats.argmax_gap(argmax_input[j], x0[j], transfer_index[j])
            if stats is not None:
                stats.commit(x0, transfer_index, mask_id)
            x[transfer_index] = x0[transfer_index]

    return x, nfe


# ----------------------------------------------------------------------------- NVlabs/Fast-dLLM


def get_transfer_index(logits, temperature, remasking, mask_index, x, num_transfer_tokens,
                       threshold=None, stats=None, mask_id=None):
    """Fast-dLLM. Confidence = softmax(float64(logits))[x0] (logits cast to float64 first).
    threshold None: commit the top num_transfer_tokens[j] candidates.
    threshold tau:  k = number of candidates (mask_index count), topk(k) gives them sorted by
                    confidence; keep the first ALWAYS, drop any later one with confidence < tau
                    (so: the most confident + every candidate with confidence >= tau)."""
    logits_with_noise = add_gumbel_noise(logits, temperature=temperature)
    x0 = torch.argmax(logits_with_noise, dim=-1)  # [B, L]

    if remasking == "low_confidence":
        p = F.softmax(logits.to(torch.float64), dim=-1)
        x0_p = torch.squeeze(torch.gather(p, dim=-1, index=torch.unsqueeze(x0, -1)), -1)  # [B, L]
    elif remasking == "random":
        x0_p = torch.rand((x0.shape[0], x0.shape[1]))
    else:
        raise NotImplementedError(remasking)

    x0 = torch.where(mask_index, x0, x)
    confidence = torch.where(mask_index, x0_p, torch.tensor(-np.inf, dtype=x0_p.dtype))

    transfer_index = torch.zeros_like(x0, dtype=torch.bool)
    if threshold is not None:
        num_transfer_tokens = mask_index.sum(dim=1, keepdim=True)
    for j in range(confidence.shape[0]):
        k_j = int(num_transfer_tokens[j])
        _, select_index = torch.topk(confidence[j], k=k_j)
        transfer_index[j, select_index] = True
        if threshold is not None:
            for k in range(1, k_j):
                if confidence[j, select_index[k]] < threshold:
                    transfer_index[j, select_index[k]] = False
        if stats is not None and temperature == 0:
            if threshold is None:
                stats.topk_gap(confidence[j], k_j)
            else:
                stats.threshold_gap(confidence[j], threshold)
            stats.argmax_gap(logits_with_noise[j], x0[j], transfer_index[j])
    if stats is not None:
        stats.commit(x0, transfer_index, mask_id)
    return x0, transfer_index


def get_transfer_index_dynamic(logits, temperature, remasking, mask_index, x, num_transfer_tokens,
                               factor=1, stats=None, mask_id=None):
    """Fast-dLLM factor rule. With M candidates sorted by confidence c[0] >= c[1] >= ...,
    thresholds t[n] = 1 - factor / (n + 2) for n = 0..M-1 (the code's ns = n + 1,
    e = factor / (ns + 1)), t[0] = -1. Scan n = 0, 1, ...: stop at the first n with
    c[n] < t[n]; commit k = n tokens (the top n). If no n fails, the loop variable ends at
    M - 1 and k = M. Quirk copied as is: `if top_i == 0 or top_i == M - 1: top_i += 1`, so a
    failure AT the last entry n = M - 1 (M >= 2) still commits all M."""
    logits_with_noise = add_gumbel_noise(logits, temperature=temperature)
    x0 = torch.argmax(logits_with_noise, dim=-1)  # [B, L]

    if remasking == "low_confidence":
        p = F.softmax(logits.to(torch.float64), dim=-1)
        x0_p = torch.squeeze(torch.gather(p, dim=-1, index=torch.unsqueeze(x0, -1)), -1)  # [B, L]
    elif remasking == "random":
        x0_p = torch.rand((x0.shape[0], x0.shape[1]))
    else:
        raise NotImplementedError(remasking)

    x0 = torch.where(mask_index, x0, x)
    confidence = torch.where(mask_index, x0_p, torch.tensor(-np.inf, dtype=x0_p.dtype))

    transfer_index = torch.zeros_like(x0, dtype=torch.bool)
    num_transfer_tokens = mask_index.sum(dim=1, keepdim=True)

    for j in range(confidence.shape[0]):
        ns = list(range(1, int(num_transfer_tokens[j]) + 1))
        es = [factor / (n + 1) for n in ns]
        threshs = [1 - e for e in es]

        # always transfer at least one token
        threshs[0] = -1
        sorted_conf = torch.sort(confidence[j][mask_index[j]], dim=-1, descending=True)[0]
        assert len(sorted_conf) == len(threshs)
        for top_i in range(len(threshs)):
            if sorted_conf[top_i] < threshs[top_i]:
                break
        checked = top_i

        if top_i == 0 or top_i == len(threshs) - 1:
            top_i += 1

        _, select_index = torch.topk(confidence[j], k=top_i)
        transfer_index[j, select_index] = True
        if stats is not None and temperature == 0:
            if len(threshs) > 1 and checked == len(threshs) - 1 and sorted_conf[checked] < threshs[checked]:
                stats.factor_quirk += 1  # the last entry failed and was committed anyway
            stats.factor_gap(sorted_conf, threshs, checked, top_i)
            stats.argmax_gap(logits_with_noise[j], x0[j], transfer_index[j])
    if stats is not None:
        stats.commit(x0, transfer_index, mask_id)
    return x0, transfer_index


def _transfer(logits, temperature, remasking, mask_index, x, ntt_i, threshold, factor, stats, mask_id):
    """The `if factor is None: get_transfer_index(...) else: get_transfer_index_dynamic(...)`
    dispatch every Fast-dLLM sampler repeats."""
    if factor is None:
        return get_transfer_index(logits, temperature, remasking, mask_index, x,
                                  ntt_i if threshold is None else None, threshold, stats, mask_id)
    return get_transfer_index_dynamic(logits, temperature, remasking, mask_index, x, None, factor,
                                      stats, mask_id)


@torch.no_grad()
def fast_generate(model, prompt, steps=128, gen_length=128, block_length=128, temperature=0.0,
                  remasking="low_confidence", mask_id=126336, threshold=None, factor=None, stats=None):
    """Fast-dLLM generate() (no cache, no CFG). Returns (x, nfe). Each block loops until it has
    no mask left, so it stops early when a step schedule has trailing zeros (steps > masks)
    and, with threshold/factor, after as few steps as the rule allows. nfe += 1 per call."""
    x = torch.full((prompt.shape[0], prompt.shape[1] + gen_length), mask_id, dtype=torch.long)
    x[:, : prompt.shape[1]] = prompt.clone()

    assert gen_length % block_length == 0
    num_blocks = gen_length // block_length

    assert steps % num_blocks == 0
    steps_per_block = steps // num_blocks

    nfe = 0
    for num_block in range(num_blocks):
        start = prompt.shape[1] + num_block * block_length
        end = start + block_length

        block_mask_index = x[:, start:end] == mask_id
        num_transfer_tokens = get_num_transfer_tokens(block_mask_index, steps_per_block)
        i = 0

        while True:
            _guard(i, block_length)
            nfe += 1
            mask_index = x == mask_id
            logits = model(x)
            mask_index[:, end:] = 0  # candidates: masks before `end` (the block; earlier blocks are done)

            x0, transfer_index = _transfer(logits, temperature, remasking, mask_index, x,
                                           num_transfer_tokens[:, i] if threshold is None else None,
                                           threshold, factor, stats, mask_id)
            x[transfer_index] = x0[transfer_index]

            i += 1
            if (x[:, start:end] == mask_id).sum() == 0:
                break

    return x, nfe


def _guard(i, block_length):
    """Not in the original. Every step commits >= 1 position, so a block is done after at most
    block_length steps -- unless the argmax is the mask id (it is not excluded): the committed
    "token" leaves the position masked, and the original then loops forever (threshold/factor)
    or fails with IndexError on num_transfer_tokens[:, i]. Raise instead of hanging."""
    if i > block_length:
        raise RuntimeError("block not finished after block_length steps: the mask id was committed")


def _keep_prefix(past_key_values, start):
    """`past_key_values[i][j][:, :, :start]`: keep positions 0..start-1 of every layer's k, v."""
    return [[(k[:start], v[:start]) for k, v in row] for row in past_key_values]


@torch.no_grad()
def generate_with_prefix_cache(model, prompt, steps=128, gen_length=128, block_length=128,
                               temperature=0.0, remasking="low_confidence", mask_id=126336,
                               threshold=None, factor=None, stats=None):
    """Fast-dLLM generate_with_prefix_cache(). Per block: one full-canvas call (use_cache) that
    also makes the block's first commit (schedule entry 0); keep the K/V of positions
    < start; then, until the block has no mask, call the model on x[:, start:] (the block AND
    everything after it), attending to the stale prefix K/V + its own fresh K/V, candidates =
    masks of the block only; schedule entries 1, 2, .... nfe counts every call."""
    x = torch.full((prompt.shape[0], prompt.shape[1] + gen_length), mask_id, dtype=torch.long)
    x[:, : prompt.shape[1]] = prompt.clone()

    assert gen_length % block_length == 0
    num_blocks = gen_length // block_length

    assert steps % num_blocks == 0
    steps_per_block = steps // num_blocks

    nfe = 0
    for num_block in range(num_blocks):
        start = prompt.shape[1] + num_block * block_length
        end = start + block_length

        block_mask_index = x[:, start:end] == mask_id
        num_transfer_tokens = get_num_transfer_tokens(block_mask_index, steps_per_block)

        logits, past_key_values = model.cached(x)  # output = model(x, use_cache=True)

        mask_index = x == mask_id
        mask_index[:, end:] = 0
        x0, transfer_index = _transfer(logits, temperature, remasking, mask_index, x,
                                       num_transfer_tokens[:, 0] if threshold is None else None,
                                       threshold, factor, stats, mask_id)
        x[transfer_index] = x0[transfer_index]

        # keep only prefix cache
        past_key_values = _keep_prefix(past_key_values, start)

        nfe += 1
        i = 1

        while True:
            if (x[:, start:end] == mask_id).sum() == 0:
                break
            _guard(i, block_length)

            nfe += 1
            mask_index = x[:, start:] == mask_id
            mask_index[:, block_length:] = 0

            logits = model.with_prefix(x[:, start:], start, past_key_values)

            # (the original also computes add_gumbel_noise + argmax here and discards it; at
            # temperature > 0 that consumes RNG draws)
            logits_with_noise = add_gumbel_noise(logits, temperature=temperature)
            _ = torch.argmax(logits_with_noise, dim=-1)

            x0, transfer_index = _transfer(logits, temperature, remasking, mask_index, x[:, start:],
                                           num_transfer_tokens[:, i] if threshold is None else None,
                                           threshold, factor, stats, mask_id)
            x[:, start:][transfer_index] = x0[transfer_index]

            i += 1

    return x, nfe


@torch.no_grad()
def generate_with_dual_cache(model, prompt, steps=128, gen_length=128, block_length=128,
                             temperature=0.0, remasking="low_confidence", mask_id=126336,
                             threshold=None, factor=None, stats=None):
    """Fast-dLLM generate_with_dual_cache(). Per block: one full-canvas call (use_cache) that
    also makes the block's first commit; keep the K/V of the WHOLE canvas; then, until the
    block has no mask, call the model on x[:, start:end] only (queries at their true
    positions), attending to the cached K/V of every position with rows start..end-1 replaced
    by the block's fresh K/V. (The original writes the fresh rows into the cache in place; the
    next call overwrites the same rows, so that is not observable.) nfe counts every call."""
    x = torch.full((prompt.shape[0], prompt.shape[1] + gen_length), mask_id, dtype=torch.long)
    x[:, : prompt.shape[1]] = prompt.clone()

    assert gen_length % block_length == 0
    num_blocks = gen_length // block_length

    assert steps % num_blocks == 0
    steps_per_block = steps // num_blocks

    nfe = 0
    for num_block in range(num_blocks):
        start = prompt.shape[1] + num_block * block_length
        end = start + block_length

        block_mask_index = x[:, start:end] == mask_id
        num_transfer_tokens = get_num_transfer_tokens(block_mask_index, steps_per_block)

        # cache init + first update
        logits, past_key_values = model.cached(x)

        mask_index = x == mask_id
        mask_index[:, end:] = 0
        x0, transfer_index = _transfer(logits, temperature, remasking, mask_index, x,
                                       num_transfer_tokens[:, 0] if threshold is None else None,
                                       threshold, factor, stats, mask_id)
        x[transfer_index] = x0[transfer_index]
        nfe += 1

        i = 1
        while True:
            if (x[:, start:end] == mask_id).sum() == 0:
                break
            _guard(i, block_length)

            nfe += 1
            mask_index = x[:, start:end] == mask_id

            logits = model.with_replace(x[:, start:end], start, past_key_values)

            x0, transfer_index = _transfer(logits, temperature, remasking, mask_index, x[:, start:end],
                                           num_transfer_tokens[:, i] if threshold is None else None,
                                           threshold, factor, stats, mask_id)
            x[:, start:end][transfer_index] = x0[transfer_index]

            i += 1

    return x, nfe


# ----------------------------------------------------------------------------- iLLaDA


@torch.no_grad()
def var_generate(model, decode, prompt, steps, gen_length, block_length, temperature=0.0, cfg_scale=0.0,
                 remasking="low_confidence", mask_id=5, stop_tokens=None, end_think_token_ids=None,
                 end_think_logit_boost=0.0, end_think_boost_power=2.0, block_sampler="llada",
                 threshold=None, factor=None, logits_eos_inf=False, confidence_eos_eot_inf=False,
                 eos_id=LLADA_EOS_ID, eot_id=LLADA_EOT_ID, stats=None, _eos_eot_reading="official"):
    """Released iLLaDA var_generate() (ML-GSAI/LLaDA generate.py, PR #134), ported line by line:
    gen_length // block_length times, call generate() on everything so far (prompt + blocks
    generated) with gen_length = block_length = block_length and `steps` steps for that block,
    the boost's context start at the ORIGINAL prompt end and its total length gen_length; after
    each block decode x[0, P:] with special tokens kept (`decode(ids)`, the tokenizer's
    decode(..., skip_special_tokens=False)) and stop once any of `stop_tokens` (strings) is in it.
    Returns (x, nfe).

    Not in the original, so that one reference covers illada's fast decoders too:
    block_sampler "fast" / "prefix" / "dual" runs that block's call through Fast-dLLM's generate
    / generate_with_prefix_cache / generate_with_dual_cache (threshold, factor) instead; and
    logits_eos_inf / confidence_eos_eot_inf are passed to generate() (the original leaves them
    at False)."""
    assert gen_length % block_length == 0
    x = prompt.clone()
    stop_tokens = stop_tokens or []
    nfe = 0
    for _ in range(gen_length // block_length):
        if block_sampler == "llada":
            x, n = generate(model, x, steps=steps, gen_length=block_length, block_length=block_length,
                            temperature=temperature, cfg_scale=cfg_scale, remasking=remasking, mask_id=mask_id,
                            logits_eos_inf=logits_eos_inf, confidence_eos_eot_inf=confidence_eos_eot_inf,
                            eos_id=eos_id, eot_id=eot_id, end_think_token_ids=end_think_token_ids,
                            end_think_logit_boost=end_think_logit_boost,
                            end_think_boost_power=end_think_boost_power,
                            end_think_context_start=prompt.shape[1], end_think_total_gen_length=gen_length,
                            stats=stats, _eos_eot_reading=_eos_eot_reading)
        else:
            if cfg_scale != 0 or end_think_logit_boost != 0 or logits_eos_inf or confidence_eos_eot_inf:
                raise ValueError("Fast-dLLM block samplers have no CFG / boost / EOS options")
            fn = {"fast": fast_generate, "prefix": generate_with_prefix_cache,
                  "dual": generate_with_dual_cache}[block_sampler]
            x, n = fn(model, x, steps=steps, gen_length=block_length, block_length=block_length,
                      mask_id=mask_id, threshold=threshold, factor=factor, stats=stats)
        nfe += n
        text = decode(x[0, prompt.shape[1]:].tolist())
        if any(stop in text for stop in stop_tokens):
            break
    return x, nfe


def cut_at_stops(text, stops):
    """eval_illada.py generate_until: for each stop string in turn, keep the text before it."""
    for stop in stops:
        if stop in text:
            text = text.split(stop)[0]
    return text


def whole_tokens_before(ids, decode, kept_text):
    """illada's token count of an answer cut at a stop string (not in the released code, which
    only cuts text): the largest k such that decode(ids[:k]) is a prefix of the kept text."""
    k_best = 0
    for k in range(1, len(ids) + 1):
        if kept_text.startswith(decode(ids[:k])):
            k_best = k
    return k_best


# ----------------------------------------------------------------------------- one entry point


def run_case(model, case, stats=None, _eos_eot_reading="official"):
    """Run a fixture case dict (see make_generate_fixtures.py). Returns (generated ids, nfe).
    Generated ids exclude the prompt and are never cut: all gen_length ids for fixed-length
    samplers, every block generated for var_generate (case["_decode"] decodes ids to text)."""
    cfg = model.cfg
    prompt = torch.tensor([case["prompt_ids"]], dtype=torch.long)
    mask_id = cfg["mask_token_id"]
    eos_id = case.get("eos_id", cfg["eos_token_id"])
    eot_id = case.get("eot_id")
    if case["temperature"] != 0 or case["remasking"] != "low_confidence":
        raise ValueError("fixture cases are greedy low_confidence")
    if case["sampler"] == "var_generate":
        decode = case["_decode"]
        block_sampler = ("llada" if case["cache"] == "none" and case["threshold"] is None and case["factor"] is None
                         else "fast" if case["cache"] == "none" else case["cache"])
        x, nfe = var_generate(
            model, decode, prompt, steps=case["steps"], gen_length=case["max_length"],
            block_length=case["block_length"], cfg_scale=case["cfg_scale"], mask_id=mask_id,
            stop_tokens=case["stop_strings"], end_think_token_ids=case["end_think_ids"],
            end_think_logit_boost=case["end_think_boost"], end_think_boost_power=case["end_think_power"],
            block_sampler=block_sampler, threshold=case["threshold"], factor=case["factor"],
            logits_eos_inf=case["logits_eos_inf"], confidence_eos_eot_inf=case["confidence_eos_eot_inf"],
            eos_id=eos_id, eot_id=eot_id, stats=stats, _eos_eot_reading=_eos_eot_reading)
        return x[0, prompt.shape[1]:].tolist(), nfe
    if case["sampler"] == "llada":
        if case["cache"] != "none" or case["threshold"] is not None or case["factor"] is not None:
            raise ValueError("the official generate() has no cache / threshold / factor")
        x, nfe = generate(model, prompt, steps=case["steps"], gen_length=case["gen_length"],
                          block_length=case["block_length"], cfg_scale=case["cfg_scale"],
                          mask_id=mask_id, logits_eos_inf=case["logits_eos_inf"],
                          confidence_eos_eot_inf=case["confidence_eos_eot_inf"], eos_id=eos_id,
                          eot_id=eot_id, end_think_token_ids=case.get("end_think_ids"),
                          end_think_logit_boost=case.get("end_think_boost", 0.0),
                          end_think_boost_power=case.get("end_think_power", 2.0),
                          stats=stats, _eos_eot_reading=_eos_eot_reading)
    elif case["sampler"] == "fast_dllm":
        if case["cfg_scale"] != 0 or case["logits_eos_inf"] or case["confidence_eos_eot_inf"]:
            raise ValueError("Fast-dLLM samplers have no CFG / EOS options")
        fn = {"none": fast_generate, "prefix": generate_with_prefix_cache,
              "dual": generate_with_dual_cache}[case["cache"]]
        x, nfe = fn(model, prompt, steps=case["steps"], gen_length=case["gen_length"],
                    block_length=case["block_length"], mask_id=mask_id,
                    threshold=case["threshold"], factor=case["factor"], stats=stats)
    else:
        raise ValueError(f"unknown sampler {case['sampler']!r}")
    return x[0, prompt.shape[1]:].tolist(), nfe


# ----------------------------------------------------------------------------- self-checks


def _check(cond, what):
    if not cond:
        raise AssertionError(what)
    print(f"ok  {what}")


def self_check(fixtures_dir):
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(99)
    for name in ("tiny_mha", "tiny_gqa"):
        model = RefModel.from_dir(os.path.join(fixtures_dir, name))
        cfg = model.cfg
        V, mask_id = R.dims(cfg)["vocab"], cfg["mask_token_id"]

        # KV-cache forward == the full forward when the cache is computed from the same canvas.
        x = torch.randint(0, V, (1, 23), generator=g)
        x[0, 10:] = mask_id
        x[0, 14] = 7
        full, kv = model.cached(x)
        ref = model(x)
        _check(torch.equal(full, ref), f"{name}: forward_kv without cache == forward (bitwise)")
        pre = model.with_prefix(x[:, 10:], 10, _keep_prefix(kv, 10))
        _check((pre - full[:, 10:]).abs().max() < 1e-10, f"{name}: prefix-cache logits == full logits[start:]")
        dual = model.with_replace(x[:, 10:16], 10, kv)
        _check((dual - full[:, 10:16]).abs().max() < 1e-10, f"{name}: dual-cache logits == full logits[block]")
        # a stale cache really is used: change a prefix token without refreshing the cache
        x2 = x.clone()
        x2[0, 3] = (x2[0, 3] + 1) % V
        stale = model.with_prefix(x2[:, 10:], 10, _keep_prefix(kv, 10))
        _check(torch.equal(stale, pre), f"{name}: prefix-cache step ignores prefix tokens (uses cached K/V)")

        prompt = torch.randint(0, V, (1, 7), generator=g)
        prompt[prompt == mask_id] = 0
        for (gl, bl, steps) in ((8, 8, 8), (12, 4, 6), (10, 10, 4), (6, 3, 8), (4, 4, 8)):
            a, nfe_a = generate(model, prompt, steps=steps, gen_length=gl, block_length=bl, mask_id=mask_id)
            b, nfe_b = fast_generate(model, prompt, steps=steps, gen_length=gl, block_length=bl, mask_id=mask_id)
            _check(torch.equal(a, b) and nfe_a == steps and nfe_b <= nfe_a,
                   f"{name}: Fast-dLLM generate (no threshold) == official generate for "
                   f"gen {gl} block {bl} steps {steps} (nfe {nfe_a} vs {nfe_b})")
            if gl == bl:
                never = lambda ids: ""  # noqa: E731 (no text: no stop)
                c, nfe_c = var_generate(model, never, prompt, steps=steps, gen_length=bl, block_length=bl,
                                        mask_id=mask_id)
                _check(torch.equal(c, a) and nfe_c == nfe_a,
                       f"{name}: var_generate, one block == official generate (gen {gl} steps {steps})")
                d, _ = fast_generate(model, prompt, steps=steps, gen_length=gl, block_length=bl,
                                     mask_id=mask_id, threshold=0.2)
                e, _ = var_generate(model, never, prompt, steps=steps, gen_length=bl, block_length=bl,
                                    mask_id=mask_id, block_sampler="fast", threshold=0.2)
                _check(torch.equal(e, d),
                       f"{name}: var_generate with Fast-dLLM threshold, one block == Fast-dLLM threshold")
        # threshold 1.01 (never reached) == factor-free one-per-step decoding == official with steps = gen_length
        a, _ = generate(model, prompt, steps=12, gen_length=12, block_length=4, mask_id=mask_id)
        b, nfe_b = fast_generate(model, prompt, steps=3, gen_length=12, block_length=4, mask_id=mask_id, threshold=1.01)
        _check(torch.equal(a, b) and nfe_b == 12, f"{name}: threshold > 1 commits one per step == official 1/step")
        # threshold 0 commits the whole block in one step
        b, nfe_b = fast_generate(model, prompt, steps=3, gen_length=12, block_length=4, mask_id=mask_id, threshold=0.0)
        _check(nfe_b == 3, f"{name}: threshold 0 finishes each block in one step")
        # the first step of a cached sampler is the full forward: one-block, one-step cases agree
        for fn in (generate_with_prefix_cache, generate_with_dual_cache):
            a, _ = fast_generate(model, prompt, steps=1, gen_length=5, block_length=5, mask_id=mask_id)
            b, nfe_b = fn(model, prompt, steps=1, gen_length=5, block_length=5, mask_id=mask_id)
            _check(torch.equal(a, b) and nfe_b == 1, f"{name}: {fn.__name__} with one step == no cache")

    # get_num_transfer_tokens
    m = torch.zeros(1, 10, dtype=torch.bool)
    m[0, :10] = True
    _check(get_num_transfer_tokens(m, 4).tolist() == [[3, 3, 2, 2]], "schedule 10 masks / 4 steps = 3,3,2,2")
    _check(get_num_transfer_tokens(m[:, :3], 5).tolist() == [[1, 1, 1, 0, 0]], "schedule 3 masks / 5 steps = 1,1,1,0,0")

    # factor rule on hand-made confidences (M = 4, factor 1): t = [-1, 1 - 1/3, 1 - 1/4, 1 - 1/5]
    def factor_k(conf, factor=1.0):
        V = 101  # top token gets probability c, the other 100 share 1 - c
        c = torch.tensor(conf, dtype=torch.float64)
        logits = torch.log(((1 - c) / (V - 1))[:, None].expand(len(conf), V).clone())
        logits[:, 0] = torch.log(c)
        mi = torch.ones(1, len(conf), dtype=torch.bool)
        x = torch.zeros(1, len(conf), dtype=torch.long)
        _, ti = get_transfer_index_dynamic(logits[None], 0.0, "low_confidence", mi, x, None, factor)
        return int(ti.sum())

    _check(factor_k([0.1, 0.05, 0.02, 0.01]) == 1, "factor: only the first passes -> 1")
    _check(factor_k([0.9, 0.8, 0.2, 0.1]) == 2, "factor: 0.8 >= 2/3, 0.2 < 3/4 -> 2")
    _check(factor_k([0.9, 0.8, 0.76, 0.1]) == 4, "factor quirk: failure at the last entry still commits all")
    _check(factor_k([0.9, 0.8, 0.76, 0.81]) == 4, "factor: all pass -> all")


if __name__ == "__main__":
    repo = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    self_check(os.path.join(repo, "tests", "fixtures"))
