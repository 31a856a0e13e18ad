"""Write tests/fixtures/score/cases.json: scoring fixtures (docs/numerics.md section 4) for the C++ tests.

    /usr/bin/python3 tools/reference/make_score_fixtures.py [out_dir]   # default tests/fixtures/score
    /usr/bin/python3 tools/reference/make_score_fixtures.py --check     # regenerate in memory, compare
    options: --mc N   Monte-Carlo batches per case for the printed cross-check (default 400; 0: off)

Every number comes from score_ref.py on tests/fixtures/tiny_mha or tiny_gqa in llada_ref's
float64 mode. Prompts and answers are uniform random ids (never the mask id) from a seeded
torch.Generator; the seed of each case is the first of 0, 1, 2, ... whose confidence scoring has
no near-tie (best vs second-best candidate log-probability >= 1e-3 at every step, so an fp32
engine picks the same positions) and whose fp32-mode confidence sums are within 2e-5 of fp64.

The Monte-Carlo cross-check runs the port of the official estimator (one batch of batch_size
per draw, torch.manual_seed fixed) and asserts its mean is within 4 standard errors of the
enumerated expectation. It is printed, not stored. Reruns are byte-identical.
"""

import json
import math
import os
import sys

import torch

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import score_ref as S  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
FIX = os.path.join(REPO, "tests", "fixtures")

MIN_GAP = 1e-3
MAX_FP32_DIFF = 2e-5

# (name, model, prompt_len, answer lengths (one = single answer, several = multiple choice),
#  batch_size, cfg_scale (both rules, as eval_illada.py's get_logits), append_eos (padd_eos))
CASES = [
    ("gqa_a1_b4", "tiny_gqa", 3, [1], 4, 0.0, False),
    ("gqa_a3_b4", "tiny_gqa", 5, [3], 4, 0.0, False),
    ("gqa_a3_b16", "tiny_gqa", 8, [3], 16, 0.0, False),
    ("gqa_a4_b16", "tiny_gqa", 6, [4], 16, 0.0, False),
    ("gqa_a4_b4_cfg1", "tiny_gqa", 4, [4], 4, 1.0, False),
    ("mha_a1_b16", "tiny_mha", 8, [1], 16, 0.0, False),
    ("mha_a3_b16", "tiny_mha", 4, [3], 16, 0.0, False),
    ("mha_a4_b4", "tiny_mha", 7, [4], 4, 0.0, False),
    ("mha_a3_b16_cfg1", "tiny_mha", 6, [3], 16, 1.0, False),
    ("gqa_choices_1_3_4", "tiny_gqa", 5, [1, 3, 4], None, 0.0, False),
    ("mha_choices_3_3_4", "tiny_mha", 6, [3, 3, 4], None, 0.0, False),
    ("gqa_a1_b4_eos", "tiny_gqa", 4, [1], 4, 0.0, True),
    ("gqa_a3_b4_eos", "tiny_gqa", 5, [3], 4, 0.0, True),
    ("mha_a4_b16_eos", "tiny_mha", 6, [4], 16, 0.0, True),
    ("gqa_a3_b16_eos_cfg1", "tiny_gqa", 7, [3], 16, 1.0, True),
    ("mha_choices_eos_2_3_4", "tiny_mha", 5, [2, 3, 4], None, 0.0, True),
    ("gqa_choices_eos_cfg1_3_4", "tiny_gqa", 6, [3, 4], None, 1.0, True),
]


def rand_ids(gen, n, vocab, mask_id):
    out = []
    while len(out) < n:
        t = int(torch.randint(0, vocab, (1,), generator=gen))
        if t != mask_id:
            out.append(t)
    return out


def build(models64, models32, mc):
    lines = []
    for ci, (name, model, P, alens, b, cfg, eos) in enumerate(CASES):
        m, m32 = models64[model], models32[model]
        vocab = S.R.dims(m.cfg)["vocab"]
        for seed in range(1000):
            gen = torch.Generator().manual_seed(1000 * ci + seed)
            prompt = rand_ids(gen, P, vocab, m.mask_id)
            answers = [rand_ids(gen, a, vocab, m.mask_id) for a in alens]
            conf = [S.confidence_score(m, prompt, a, cfg, eos) for a in answers]
            conf32 = [S.confidence_score(m32, prompt, a, cfg, eos) for a in answers]
            gap = min(min(c[3]) for c in conf)
            d32 = max(abs(c[0] - c32[0]) for c, c32 in zip(conf, conf32))
            if gap >= MIN_GAP and d32 <= MAX_FP32_DIFF:
                break
        else:
            raise RuntimeError(f"{name}: no robust seed")
        for a, cs in zip(answers, conf):  # the released function gives the same score
            released = S.get_loglikelihood_confidence(m, S._ids(prompt), S._ids(a), cfg, eos)
            assert abs(released - cs[0]) < 1e-9, (name, released, cs[0])
        c = {"name": name, "model": model, "mask_id": m.mask_id, "prompt_ids": prompt, "cfg_scale": cfg,
             "append_eos": eos}
        if len(answers) == 1:
            a = answers[0]
            L = S.subset_losses(m, prompt, a, cfg, eos)
            E = S.exact_expectation(m, prompt, a, b, cfg, L, eos)
            one = None
            if len(a) == 1:
                mask_ids = S._ids(prompt + [m.mask_id] + ([m.eos_id] if eos else []))[None]
                one = float(torch.log_softmax(m(mask_ids).logits[0, P], -1)[a[0]])
                if cfg == 0.0:
                    assert abs(one - E) < 1e-12, (one, E)
            c.update({
                "kind": "single",
                "answer_ids": a,
                "batch_size": b,
                "exact_expectation": E,
                "exact_log_likelihood_one_token": one,
                "mean_ce_by_count": [L[x] for x in range(1, len(a) + 1)],
                "counts_by_k": [S.official_counts(k, len(a), b) for k in range(1, len(a) + 1)],
                "confidence_sum": conf[0][0],
                "confidence_normalized": conf[0][1],
                "confidence_order": conf[0][2],
            })
            msg = f"{name:20s} seed {seed:3d}  E {E:+.6f}"
            if mc > 0:
                torch.manual_seed(12345 + ci)
                pa, aa = S._ids(prompt), S._ids(a)
                v = [S.get_log_likelihood(m, pa, aa, b, b, cfg, m.mask_id, eos, m.eos_id) for _ in range(mc)]
                mean = sum(v) / mc
                se = math.sqrt(sum((e - mean) ** 2 for e in v) / (mc - 1) / mc)
                msg += f"  MC mean {mean:+.6f} (n {mc}, se {se:.6f}, diff {mean - E:+.2e}"
                if len(a) == 1:  # every draw is exact: equal up to rounding
                    msg += ")"
                    assert abs(mean - E) < 1e-9 and se < 1e-9, msg
                else:
                    msg += f", z {(mean - E) / se:+.2f})"
                    assert abs(mean - E) < 4 * se, msg
        else:
            c.update({
                "kind": "multiple_choice",
                "choices": answers,
                "confidence_sum": [x[0] for x in conf],
                "confidence_normalized": [x[1] for x in conf],
                "confidence_order": [x[2] for x in conf],
                "best_choice_sum": max(range(len(conf)), key=lambda i: conf[i][0]),
                "best_choice_normalized": max(range(len(conf)), key=lambda i: conf[i][1]),
            })
            msg = f"{name:20s} seed {seed:3d}"
        c["min_confidence_gap"] = gap if math.isfinite(gap) else None  # None: one candidate only
        c["fp32_confidence_max_diff"] = d32
        c["prompt_seed"] = seed
        sums = [x[0] for x in conf]
        print(msg + f"  conf {['%+.5f' % s for s in sums]}  gap {gap:.2e}  fp32 diff {d32:.1e}", flush=True)
        lines.append(json.dumps(c, separators=(", ", ": "), allow_nan=False))
    return "[\n" + ",\n".join(lines) + "\n]\n"


def main(argv):
    torch.set_num_threads(1)
    check = "--check" in argv
    mc = 400
    if "--mc" in argv:
        mc = int(argv[argv.index("--mc") + 1])
    rest = [a for i, a in enumerate(argv) if not a.startswith("--") and (i == 0 or argv[i - 1] != "--mc")]
    out_dir = rest[0] if rest else os.path.join(FIX, "score")
    models64 = {n: S.RefLM.from_dir(os.path.join(FIX, n), "fp64") for n in ("tiny_gqa", "tiny_mha")}
    models32 = {n: S.RefLM(models64[n].W, models64[n].cfg, "fp32") for n in models64}
    text = build(models64, models32, mc)
    path = os.path.join(out_dir, "cases.json")
    if check:
        with open(path) as f:
            same = f.read() == text
        print("cases.json identical" if same else "cases.json DIFFERS")
        return 0 if same else 1
    os.makedirs(out_dir, exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    print(f"wrote {path} ({len(text)} bytes, {len(CASES)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
