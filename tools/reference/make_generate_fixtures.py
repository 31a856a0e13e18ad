"""Write tests/fixtures/generate/cases.json: token-exact sampler fixtures for the C++ tests.

    /usr/bin/python3 tools/reference/make_generate_fixtures.py [out_dir]   # default tests/fixtures/generate
    /usr/bin/python3 tools/reference/make_generate_fixtures.py --check     # regenerate in memory, compare

Every case runs a port from llada_generate.py on tests/fixtures/tiny_mha or tiny_gqa in the
float64 reference (ground truth), and again in the fp32 and bf16 modes of llada_ref to record
whether those reproduce the same tokens. The prompt of each case is found by a deterministic
search: prompt seed 0, 1, 2, ... until the case's requirement holds (its `want`: e.g. stops at
EOS, a threshold step commits several tokens, an EOS option changes the output), no committed
token is the mask id (unless wanted) and the fp32 run agrees with fp64. Reruns are byte-identical.
"""

import json
import math
import os
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llada_generate as G  # noqa: E402
import tiny_tokenizer as T  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIX = os.path.join(REPO, "tests", "fixtures")

# id that `confidence_eos_eot_inf` treats as EoT (126348 in the official code). The tiny models
# have no such token; these are ids the models often predict, so the option has an effect.
EOT_ID = {"tiny_mha": 35, "tiny_gqa": 10}

# name, model, prompt_len, gen_length (None: variable length), block_length, steps (total; per
# block for variable length), extra fields, want
C = []


def case(name, model, P, gen, block, steps, want=(), **kw):
    C.append((name, model, P, gen, block, steps, kw, tuple(want)))


# --- official LLaDA generate() --------------------------------------------------------------
case("llada_mha_g8_b8_s8", "tiny_mha", 6, 8, 8, 8)
case("llada_mha_g12_b4_s6", "tiny_mha", 7, 12, 4, 6)              # 3 blocks, 2 per step
case("llada_mha_g10_b10_s4", "tiny_mha", 5, 10, 10, 4)            # uneven: 3,3,2,2
case("llada_mha_g6_b3_s8", "tiny_mha", 6, 6, 3, 8)                # 4 steps for 3 masks: 1,1,1,0
case("llada_mha_g32_b8_s16", "tiny_mha", 10, 32, 8, 16)
case("llada_gqa_g16_b8_s6", "tiny_gqa", 8, 16, 8, 6)              # 2 blocks, 3,3,2
case("llada_gqa_g12_b12_s12", "tiny_gqa", 9, 12, 12, 12)
case("llada_gqa_g15_b5_s6", "tiny_gqa", 6, 15, 5, 6)              # 3 blocks, 3,2
case("llada_gqa_g24_b8_s12", "tiny_gqa", 12, 24, 8, 12)           # 3 blocks, 3,3,2,
case("llada_cfg_mha_g8_b4_s4", "tiny_mha", 6, 8, 4, 4, ("cfg_changes_output",), cfg_scale=1.5)
case("llada_cfg_gqa_g9_b3_s6", "tiny_gqa", 7, 9, 3, 6, ("cfg_changes_output",), cfg_scale=1.5)       # 2,1
case("llada_cfg_gqa_g10_b10_s5", "tiny_gqa", 8, 10, 10, 5, ("cfg_changes_output",), cfg_scale=1.0)
case("llada_eosinf_gqa_g12_b6_s6", "tiny_gqa", 8, 12, 6, 6, ("option_changes_output",), logits_eos_inf=True)
case("llada_confinf_gqa_g12_b12_s6", "tiny_gqa", 8, 12, 12, 6, ("option_changes_output", "confinf_readings_differ"),
     confidence_eos_eot_inf=True)
case("llada_confinf_mha_g8_b8_s8", "tiny_mha", 6, 8, 8, 8, ("option_changes_output",),
     confidence_eos_eot_inf=True)
case("llada_both_cfg_gqa_g12_b6_s6", "tiny_gqa", 7, 12, 6, 6, ("option_changes_output",), cfg_scale=1.5,
     logits_eos_inf=True, confidence_eos_eot_inf=True)
case("llada_commits_mask_gqa_g16_b16_s16", "tiny_gqa", 8, 16, 16, 16, ("commits_mask",))

# --- Fast-dLLM generate(), no cache -----------------------------------------------------------
case("fast_plain_mha_g8_b4_s16", "tiny_mha", 6, 8, 4, 16, fast=True)  # early block exit: nfe 8, not 16
case("fast_plain_gqa_g12_b4_s6", "tiny_gqa", 8, 12, 4, 6, fast=True)
case("fast_thr0.9_mha_g16_b8_s16", "tiny_mha", 6, 16, 8, 16, threshold=0.9)
case("fast_thr0.3_mha_g16_b16_s16", "tiny_mha", 8, 16, 16, 16, ("multi_commit",), threshold=0.3)
case("fast_thr0.5_gqa_g16_b8_s16", "tiny_gqa", 7, 16, 8, 16, ("multi_commit",), threshold=0.5)
case("fast_thr0.3_gqa_g24_b8_s24", "tiny_gqa", 9, 24, 8, 24, ("multi_commit",), threshold=0.3)
case("fast_factor1_mha_g16_b8_s16", "tiny_mha", 6, 16, 8, 16, factor=1.0)
case("fast_factor2_gqa_g16_b16_s16", "tiny_gqa", 8, 16, 16, 16, ("multi_commit",), factor=2.0)
case("fast_factor2_quirk_gqa_g16_b8_s16", "tiny_gqa", 7, 16, 8, 16, ("factor_quirk",), factor=2.0)
case("fast_factor3_mha_g16_b8_s16", "tiny_mha", 7, 16, 8, 16, ("multi_commit",), factor=3.0)

# --- Fast-dLLM prefix cache -------------------------------------------------------------------
case("prefix_plain_mha_g16_b8_s16", "tiny_mha", 6, 16, 8, 16, ("cache_changes_output",), cache="prefix")
case("prefix_plain_gqa_g16_b4_s8", "tiny_gqa", 7, 16, 4, 8, ("cache_changes_output",), cache="prefix")
case("prefix_plain_gqa_g15_b5_s6", "tiny_gqa", 8, 15, 5, 6, ("cache_changes_output",), cache="prefix")
case("prefix_thr0.3_mha_g24_b8_s24", "tiny_mha", 8, 24, 8, 24, ("multi_commit", "cache_changes_output"), cache="prefix", threshold=0.3)
case("prefix_thr0.5_gqa_g16_b8_s16", "tiny_gqa", 6, 16, 8, 16, ("multi_commit", "cache_changes_output"), cache="prefix", threshold=0.5)
case("prefix_factor2_gqa_g16_b8_s16", "tiny_gqa", 9, 16, 8, 16, ("multi_commit", "cache_changes_output"), cache="prefix", factor=2.0)

# --- Fast-dLLM dual cache ---------------------------------------------------------------------
case("dual_plain_mha_g16_b8_s16", "tiny_mha", 6, 16, 8, 16, ("cache_changes_output", "dual_differs_from_prefix"), cache="dual")
case("dual_plain_gqa_g15_b5_s6", "tiny_gqa", 8, 15, 5, 6, ("cache_changes_output", "dual_differs_from_prefix"), cache="dual")
case("dual_plain_gqa_g12_b4_s12", "tiny_gqa", 6, 12, 4, 12, ("cache_changes_output", "dual_differs_from_prefix"), cache="dual")
case("dual_thr0.3_mha_g16_b8_s16", "tiny_mha", 7, 16, 8, 16, ("multi_commit", "cache_changes_output", "dual_differs_from_prefix"), cache="dual", threshold=0.3)
case("dual_thr0.5_gqa_g24_b8_s24", "tiny_gqa", 8, 24, 8, 24, ("multi_commit", "cache_changes_output", "dual_differs_from_prefix"), cache="dual", threshold=0.5)
case("dual_factor2_gqa_g16_b8_s16", "tiny_gqa", 9, 16, 8, 16, ("multi_commit", "cache_changes_output", "dual_differs_from_prefix"), cache="dual", factor=2.0)

# --- official generate() with the released end-of-thinking boost -------------------------------
THINK = [T.strings().index(t) for t in ("/", "th", "in")]  # the tiny models' "</think>": "/thin"
case("llada_boost_gqa_g16_b8_s16", "tiny_gqa", 7, 16, 8, 16, ("boost_changes_output", "boost_completes"),
     end_think_ids=THINK, end_think_boost=12.0, end_think_power=1.0)
case("llada_boost_mha_g12_b4_s12", "tiny_mha", 6, 12, 4, 12, ("boost_changes_output",),
     end_think_ids=THINK, end_think_boost=6.0, end_think_power=2.0)

# --- iLLaDA var_generate (released) -----------------------------------------------------------
# steps are per block; the stop strings are the EOS text plus, where named, an `until` string
# chosen from a run without it (see until_from below).
EOS_TEXT = T.SPECIAL[1]
case("var_gqa_b8_s8_eos_first_block", "tiny_gqa", 8, None, 8, 8, ("stops_in_block_1",), max_length=32)
case("var_gqa_b8_s4_eos_later_block", "tiny_gqa", 7, None, 8, 4, ("stops_later",), max_length=40)
case("var_gqa_b4_s2_eos", "tiny_gqa", 6, None, 4, 2, ("stops_later",), max_length=32)
case("var_gqa_b8_s16_more_steps_than_masks", "tiny_gqa", 7, None, 8, 16, ("stops_later",), max_length=32)
case("var_gqa_b8_s8_to_max", "tiny_gqa", 9, None, 8, 8, ("no_stop",), max_length=24)
case("var_mha_b8_s4_to_max", "tiny_mha", 6, None, 8, 4, ("no_stop",), max_length=24)
case("var_mha_b8_s8_until_mid_token", "tiny_mha", 6, None, 8, 8, ("until_mid_token",), max_length=32)
case("var_gqa_b4_s4_until_spans_tokens", "tiny_gqa", 8, None, 4, 4, ("until_spans_tokens",), max_length=24)
case("var_cfg_gqa_b8_s8_stops_later", "tiny_gqa", 7, None, 8, 8, ("stops_later", "cfg_changes_output"), cfg_scale=1.0,
     max_length=32)
case("var_cfg_mha_b4_s4_to_max", "tiny_mha", 6, None, 4, 4, ("no_stop", "cfg_changes_output"), cfg_scale=1.5,
     max_length=16)
case("var_boost_gqa_b8_s8", "tiny_gqa", 8, None, 8, 8, ("boost_changes_output", "boost_completes"), max_length=32,
     end_think_ids=THINK, end_think_boost=12.0, end_think_power=2.0)
case("var_eosinf_gqa_b8_s8_to_max", "tiny_gqa", 8, None, 8, 8, ("no_stop", "option_changes_output"),
     logits_eos_inf=True, max_length=24)
case("var_confinf_gqa_b8_s8", "tiny_gqa", 8, None, 8, 8, ("stops", "option_changes_output", "confinf_readings_differ"),
     confidence_eos_eot_inf=True, max_length=32)
# var_generate with Fast-dLLM's decoders for each block (illada's fast paths in variable length)
case("var_thr0.3_gqa_b8", "tiny_gqa", 8, None, 8, 8, ("stops_later", "multi_commit"), threshold=0.3, max_length=40)
case("var_thr0.5_gqa_b8_to_max", "tiny_gqa", 6, None, 8, 8, ("no_stop", "multi_commit"), threshold=0.5, max_length=24)
case("var_prefix_gqa_b8_s8", "tiny_gqa", 7, None, 8, 8, ("stops_later", "cache_changes_output"), cache="prefix",
     max_length=32)
case("var_dual_thr0.5_gqa_b8", "tiny_gqa", 8, None, 8, 8, ("multi_commit", "cache_changes_output"), cache="dual",
     threshold=0.5, max_length=32)
case("var_dual_factor2_mha_b8", "tiny_mha", 7, None, 8, 8, ("multi_commit",), cache="dual", factor=2.0, max_length=24)

SEARCH_SEEDS = 300
# Required margins in the float64 run. fp32 logits differ from fp64 by ~1e-5 on these models
# (tools/reference/README.md), so a 2e-3 logit gap and a 2e-4 confidence gap leave ~100x room.
# A confidence gap of 0 would mean an exact tie at a commit boundary (e.g. two positions whose
# x0 is EOS get confidence exactly 0 under confidence_eos_eot_inf): torch.topk's choice among
# ties is unspecified, so such prompts are skipped.
MIN_TOP2_GAP = 2e-3
MIN_CONF_GAP = 2e-4
FIELD_ORDER = (
    "name", "sampler", "model", "tokenizer", "prompt_ids", "gen_length", "block_length", "steps", "steps_per_block",
    "cfg_scale", "remasking", "temperature", "threshold", "factor", "cache", "variable_length", "max_length",
    "stop_strings", "end_think_ids", "end_think_boost", "end_think_power",
    "logits_eos_inf", "confidence_eos_eot_inf", "mask_id", "eos_id", "eot_id", "expected_ids",
    "expected_generated", "expected_text", "expected_nfe", "commits_per_step", "commits_mask_token", "stopped",
    "min_top2_logit_gap", "min_confidence_gap", "agrees_fp32", "agrees_bf16", "prompt_seed",
)


def make_prompt(model_name, cfg, P, seed):
    V = cfg.get("embedding_size") or cfg["vocab_size"]
    g = torch.Generator().manual_seed(1000 * seed + P)
    ids = torch.randint(0, V, (P,), generator=g)
    ids[ids == cfg["mask_token_id"]] = (cfg["mask_token_id"] + 1) % V
    return ids.tolist()


def base_case(name, model_name, cfg, P, gen, block, steps, kw):
    var = gen is None
    fast = kw.pop("fast", False) or any(kw.get(k) not in (None, "none") for k in ("threshold", "factor", "cache"))
    return {
        "name": name,
        "sampler": "var_generate" if var else "fast_dllm" if fast else "llada",
        "model": model_name,
        "tokenizer": "generate/tiny_tokenizer" if var else None,
        "prompt_ids": None,
        "gen_length": gen,
        "block_length": block,
        "steps": steps,
        "steps_per_block": steps if var else steps // (gen // block),
        "cfg_scale": kw.get("cfg_scale", 0.0),
        "remasking": "low_confidence",
        "temperature": 0.0,
        "threshold": kw.get("threshold"),
        "factor": kw.get("factor"),
        "cache": kw.get("cache", "none"),
        "variable_length": var,
        "max_length": kw.get("max_length"),
        "stop_strings": [EOS_TEXT] if var else None,
        "end_think_ids": kw.get("end_think_ids"),
        "end_think_boost": kw.get("end_think_boost", 0.0),
        "end_think_power": kw.get("end_think_power", 2.0),
        "logits_eos_inf": kw.get("logits_eos_inf", False),
        "confidence_eos_eot_inf": kw.get("confidence_eos_eot_inf", False),
        "mask_id": cfg["mask_token_id"],
        "eos_id": cfg["eos_token_id"],
        "eot_id": EOT_ID[model_name],
    }


def run(models, c, precision="fp64", stats=None, reading="official"):
    m = models[(c["model"], precision)]
    return G.run_case(m, dict(c, _decode=T.decode), stats, reading)


def same_output(models, c, ids, reading="official"):
    """Does the variant `c` produce `ids`? A variant that cannot finish (it committed the mask
    id, see llada_generate._guard) counts as the same, so the prompt is skipped."""
    try:
        return run(models, c, reading=reading)[0] == ids
    except (RuntimeError, IndexError):
        return True


def answer(c, generated):
    """(cut text, illada's cut ids, stopped) of a var_generate output, as eval_illada.py cuts it."""
    text = T.decode(generated)
    kept = G.cut_at_stops(text, c["stop_strings"])
    stopped = kept != text
    return kept, generated[:G.whole_tokens_before(generated, T.decode, kept)] if stopped else generated, stopped


def until_from(models, c, want, ids):
    """Picks an `until` string from the output of a run without one (which must not stop): three
    characters that start inside block 2's text and occur there first. "until_mid_token": the
    string begins inside a two-character token; "until_spans_tokens": it begins at a token
    boundary and covers two or more tokens. None if this output offers no such string."""
    text = T.decode(ids)
    starts = []  # character offset where each token begins
    pos = 0
    for i in ids:
        starts.append(pos)
        pos += len(T.strings()[i])
    bl = c["block_length"]
    lo, hi = starts[bl], starts[min(2 * bl, len(ids)) - 1]
    for p in range(lo, hi):
        s = text[p:p + 3]
        if len(s) < 3 or text.find(s) != p or "<" in s or ">" in s:
            continue
        at_boundary = p in starts
        covered = sum(1 for q in starts if p <= q < p + 3) + (0 if at_boundary else 1)
        if "until_mid_token" in want and not at_boundary:
            return s
        if "until_spans_tokens" in want and at_boundary and covered >= 2:
            return s
    return None


def wants_ok(models, c, ids, nfe, stats, want):
    if "commits_mask" in want:
        if stats.committed_mask == 0:
            return False
    elif stats.committed_mask:
        return False
    if "factor_quirk" in want and stats.factor_quirk == 0:
        return False
    if "multi_commit" in want and max(stats.commits_per_step) < 2:
        return False
    if c["variable_length"]:
        kept, _, stopped = answer(c, ids)
        n_blocks = len(ids) // c["block_length"]
        if "stops_in_block_1" in want and not (stopped and n_blocks == 1):
            return False
        if "stops_later" in want and not (stopped and n_blocks >= 2):
            return False
        if "stops" in want and not stopped:
            return False
        if "no_stop" in want and stopped:
            return False
    if "boost_changes_output" in want:
        if same_output(models, dict(c, end_think_boost=0.0), ids):
            return False
    if "boost_completes" in want:
        n = len(c["end_think_ids"])
        if not any(ids[i:i + n] == c["end_think_ids"] for i in range(len(ids) - n + 1)):
            return False
    if "option_changes_output" in want:
        if same_output(models, dict(c, logits_eos_inf=False, confidence_eos_eot_inf=False), ids):
            return False
    if "confinf_readings_differ" in want:
        # the official chained assignment must matter: neither misreading gives these tokens
        if same_output(models, c, ids, "eot_only") or same_output(models, c, ids, "confidence"):
            return False
    if "cfg_changes_output" in want:
        if same_output(models, dict(c, cfg_scale=0.0), ids):
            return False
    if "dual_differs_from_prefix" in want:
        if same_output(models, dict(c, cache="prefix"), ids):
            return False
    if "cache_changes_output" in want:
        if same_output(models, dict(c, cache="none"), ids):
            return False
    return True


def build():
    torch.set_num_threads(1)
    models = {}
    for name in ("tiny_mha", "tiny_gqa"):
        for prec in ("fp64", "fp32", "bf16"):
            models[(name, prec)] = G.RefModel.from_dir(os.path.join(FIX, name), prec)
    cases = []
    for name, model_name, P, gen, block, steps, kw, want in C:
        cfg = models[(model_name, "fp64")].cfg
        c = base_case(name, model_name, cfg, P, gen, block, steps, kw)
        for seed in range(SEARCH_SEEDS):
            c["prompt_ids"] = make_prompt(model_name, cfg, P, seed)
            c["stop_strings"] = [EOS_TEXT] if c["variable_length"] else None
            stats = G.Stats()
            try:
                ids, nfe = run(models, c, "fp64", stats)
            except (RuntimeError, IndexError):  # the mask id was committed and a Fast-dLLM loop would not end
                continue
            if any(w.startswith("until") for w in want):
                # a run that never stops, then the same with a stop string picked from its text
                if len(ids) < c["max_length"] or answer(c, ids)[2]:
                    continue
                until = until_from(models, c, want, ids)
                if until is None:
                    continue
                c["stop_strings"] = [EOS_TEXT, until]
                stats = G.Stats()
                ids, nfe = run(models, c, "fp64", stats)
                if not answer(c, ids)[2] or len(ids) != 2 * c["block_length"]:
                    continue
            if stats.top2_gap < MIN_TOP2_GAP or stats.conf_gap < MIN_CONF_GAP:
                continue
            if not wants_ok(models, c, ids, nfe, stats, want):
                continue
            try:
                ids32, nfe32 = run(models, c, "fp32")
            except (RuntimeError, IndexError):
                continue
            if (ids32, nfe32) != (ids, nfe):
                continue
            try:
                agrees_bf16 = run(models, c, "bf16") == (ids, nfe)
            except (RuntimeError, IndexError):
                agrees_bf16 = False
            break
        else:
            raise RuntimeError(f"{name}: no prompt seed < {SEARCH_SEEDS} satisfies {want}")
        out = dict(c)
        if c["variable_length"]:
            kept, cut_ids, stopped = answer(c, ids)
        else:
            kept, cut_ids, stopped = None, ids, None
        out.update({
            "expected_ids": cut_ids,
            "expected_generated": ids,
            "expected_text": kept,
            "expected_nfe": nfe,
            "commits_per_step": stats.commits_per_step,
            "commits_mask_token": stats.committed_mask > 0,
            "stopped": stopped,
            "min_top2_logit_gap": float(f"{stats.top2_gap:.4g}"),
            "min_confidence_gap": float(f"{stats.conf_gap:.4g}") if math.isfinite(stats.conf_gap) else None,
            "agrees_fp32": True,
            "agrees_bf16": agrees_bf16,
            "prompt_seed": seed,
        })
        cases.append({k: out[k] for k in FIELD_ORDER})
    return cases


def dumps(cases):
    """One case per line: small diffs, still valid JSON."""
    lines = [json.dumps(c, separators=(", ", ": ")) for c in cases]
    return "[\n" + ",\n".join(lines) + "\n]\n"


def summary(cases):
    kinds = {}
    for c in cases:
        k = ("variable_length" if c["variable_length"] else
             f"cache={c['cache']}" if c["cache"] != "none" else
             "fast_threshold" if c["threshold"] is not None else
             "fast_factor" if c["factor"] is not None else
             "llada_cfg" if c["cfg_scale"] > 0 else "llada")
        kinds[k] = kinds.get(k, 0) + 1
    print("cases by kind:", kinds)
    print("min top-2 logit gap over all cases: %.4g" % min(c["min_top2_logit_gap"] for c in cases))
    print("min confidence gap over all cases:  %.4g" % min(c["min_confidence_gap"] for c in cases
                                                           if c["min_confidence_gap"] is not None))
    print("agree fp32: %d/%d, agree bf16: %d/%d" % (
        sum(c["agrees_fp32"] for c in cases), len(cases), sum(c["agrees_bf16"] for c in cases), len(cases)))
    for c in cases:
        print(f"  {c['name']:36s} seed {c['prompt_seed']:3d} nfe {c['expected_nfe']:3d} "
              f"len {len(c['expected_ids']):3d}/{len(c['expected_generated']):3d} top2 {c['min_top2_logit_gap']:.3g} "
              f"conf {c['min_confidence_gap']} bf16 {c['agrees_bf16']}")


def main():
    args = sys.argv[1:]
    check = "--check" in args
    args = [a for a in args if a != "--check"]
    out_dir = args[0] if args else os.path.join(FIX, "generate")
    cases = build()
    text = dumps(cases)
    path = os.path.join(out_dir, "cases.json")
    summary(cases)
    if check:
        with open(path) as f:
            same = f.read() == text
        print("cases.json reproduced byte for byte" if same else "cases.json DIFFERS from a fresh build")
        sys.exit(0 if same else 1)
    os.makedirs(out_dir, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {path} ({len(text)} bytes)")


if __name__ == "__main__":
    main()
