#!/usr/bin/env python3
"""Writes docs/results.md from the run directories of scripts/reproduce.sh.

Only the Python standard library. Every figure is read from the runs' own outputs
(summary.json of `illada demo`, the JSON summary and per-example lines of `illada eval`);
error bars are the standard error over seeds, and comparisons use the per-seed (paired)
difference, whose mean and standard error decide the wording ("no clear difference" when the
mean difference is within two standard errors of zero).
"""
import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time


def load(path):
    with open(path) as f:
        return json.load(f)


def mean_se(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not xs:
        return float("nan"), float("nan")
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, float("nan")
    var = sum((x - m) ** 2 for x in xs) / (len(xs) - 1)
    return m, math.sqrt(var / len(xs))


def fmt_pct(xs):
    m, se = mean_se(xs)
    if math.isnan(m):
        return "-"
    per = ", ".join(f"{100 * x:.0f}" for x in xs)
    return f"{100 * m:.1f} ± {100 * se:.1f} ({per})"


def fmt_num(xs, digits=2, per_seed=True):
    m, se = mean_se(xs)
    if math.isnan(m):
        return "-"
    s = f"{m:.{digits}f} ± {se:.{digits}f}"
    if per_seed:
        s += " (" + ", ".join(f"{x:.{digits}f}" for x in xs) + ")"
    return s


def verdict(a, b, name_a, name_b, what, scale=100.0, unit=" points"):
    """Paired comparison of per-seed values a and b."""
    d = [x - y for x, y in zip(a, b)]
    m, se = mean_se(d)
    if math.isnan(m):
        return f"{what}: not enough seeds to compare."
    if math.isnan(se) or abs(m) <= 2 * se:
        return (f"{what}: no clear difference between {name_a} and {name_b} "
                f"({name_a} − {name_b} = {scale * m:+.1f} ± {scale * se:.1f}{unit}).")
    better = name_a if m > 0 else name_b
    return (f"{what}: {better} is higher ({name_a} − {name_b} = {scale * m:+.1f} ± {scale * se:.1f}{unit}, "
            f"more than two standard errors).")


def acc(summary, section, kind=None):
    s = summary[section]
    if kind is None:
        return s["accuracy"]
    k = s["by_kind"].get(kind)
    return None if k is None else k["accuracy"]


def acc_cells(runs):
    """Open (all, city) and multiple-choice (both rules) accuracies of demo runs, as table cells."""
    return " | ".join(fmt_pct([acc(x, sec, kind) for x in runs]) for sec, kind in
                      (("open", None), ("open", "city"), ("mc_confidence", None), ("mc_likelihood", None)))


def paired_verdicts(a, b, name_a, name_b):
    """Open-question and confidence multiple-choice comparisons of two lists of demo runs."""
    return "\n".join(verdict([acc(x, sec) for x in a], [acc(x, sec) for x in b], name_a, name_b, what)
                     for sec, what in (("open", "Open questions"), ("mc_confidence", "Multiple choice (confidence)")))


def machine():
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')}"


def git_rev():
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    except Exception:
        return "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--seeds", required=True)
    ap.add_argument("--epochs", required=True)
    ap.add_argument("--seconds", type=float, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--commit", default="", help="commit of the binary that made the runs (default: HEAD)")
    ap.add_argument("--note", default="", help="a sentence on the conditions of the run (e.g. a shared machine)")
    a = ap.parse_args()
    seeds = a.seeds.split()
    epochs = a.epochs.split()
    R = lambda s, *p: os.path.join(a.runs, f"seed_{s}", *p)

    base = [load(R(s, "base", "summary.json")) for s in seeds]
    nosplit = [load(R(s, "nosplit", "summary.json")) for s in seeds]
    ep = {e: [load(R(s, f"epochs_{e}", "summary.json")) for s in seeds] for e in epochs}
    pclean = [load(R(s, "promptclean", "summary.json")) for s in seeds]
    run_seconds = 0.0
    for s in seeds:
        for root, _, files in os.walk(R(s)):
            if "seconds" in files:
                with open(os.path.join(root, "seconds")) as f:
                    run_seconds += float(f.read())

    b0 = base[0]["settings"]
    default_epochs = b0["sft"]["epochs"]
    kinds = sorted(base[0]["mc_confidence"]["by_kind"].keys())
    person = [k for k in kinds if k in ("city", "job", "mother", "whose_mother", "age", "about")]
    o = []
    w = o.append
    w("# Results: the paper's ablations at small scale\n")
    w(f"Produced by `bash scripts/reproduce.sh` (seeds {', '.join(seeds)}; commit {a.commit or git_rev()}; "
      f"{time.strftime('%Y-%m-%d')}) on {machine()}. The runs took {run_seconds / 60:.0f} minutes "
      f"of wall time in all"
      + (f" ({a.seconds / 60:.0f} minutes for this invocation)" if a.seconds else "") + ". " + a.note + "\n")
    summary = []
    w("Every figure is computed by the pipeline of `illada demo` (synthetic world of fictional people, "
      "arithmetic and string tasks; BPE tokenizer; pre-training; SFT) and `illada eval`, run by the script; "
      "nothing is cached. The exact command of each run is in `RUN_DIR/command`; the layout is listed at the "
      "top of `scripts/reproduce.sh`. All questions are held out: person questions ask about people whose "
      "facts are only in the pre-training corpus (never asked in SFT), arithmetic and string questions use "
      "operands and words never trained on.\n")
    w(f"Format: mean ± standard error over {len(seeds)} seeds, then the per-seed values in brackets "
      "(percentages for accuracies). Comparisons use the paired per-seed difference.\n")
    m = b0["model"]
    w("Setting (the demo preset): model d_model {d}, {L} layers, {h} heads / {kv} KV heads, MLP {mlp}, tied "
      "head, vocab {v}; pre-training {st} steps × {bs} windows × {sl} tokens; whole-sequence SFT {e:g} epochs; "
      "open questions by variable-length generation (blocks of 8, at most 32 tokens, one token per step), "
      "exact match; multiple choice with 4 choices (chance 25%), likelihood with {mc} Monte-Carlo samples. "
      "{n} held-out open questions per seed.\n".format(
          d=m["d_model"], L=m["n_layers"], h=m["n_heads"], kv=m["n_kv_heads"], mlp=m["mlp_hidden_size"],
          v=b0["vocab_size"], st=b0["pretrain"]["steps"], bs=b0["pretrain"]["batch_size"],
          sl=b0["pretrain"]["seq_len"], e=default_epochs, mc=b0["likelihood_mc_num"], n=base[0]["open"]["n"]))

    summary_at = len(o)  # the summary list goes here once the sections are written
    summary.append("0. The demo's instruct model (default settings) answers held-out open questions of the simplest "
                   f"kind (the home city of a held-out person; chance {100 * base[0]['open']['by_kind']['city']['chance']:.1f}%) "
                   f"with exact-match accuracy (%) {fmt_pct([acc(x, 'open', 'city') for x in base])}, and all open kinds "
                   f"with {fmt_pct([acc(x, 'open') for x in base])} (chance {100 * base[0]['open']['chance']:.1f}%).")
    # 1. Confidence vs likelihood.
    w("## 1. Multiple choice: confidence-based vs likelihood scoring\n")
    w("The same instruct model (`base/sft`) and questions; confidence = sum of log-probabilities of the "
      "answer tokens unmasked one at a time, most confident first (iLLaDA); likelihood = LLaDA's Monte-Carlo "
      "estimate of the masked-diffusion bound.\n")
    w("| question kind | confidence accuracy % | likelihood accuracy % |\n|---|---|---|")
    for k in kinds:
        label = k + (" (held-out people)" if k in person else "")
        w(f"| {label} | {fmt_pct([acc(x, 'mc_confidence', k) for x in base])} | "
          f"{fmt_pct([acc(x, 'mc_likelihood', k) for x in base])} |")
    conf_all = [acc(x, "mc_confidence") for x in base]
    like_all = [acc(x, "mc_likelihood") for x in base]
    w(f"| **all** | {fmt_pct(conf_all)} | {fmt_pct(like_all)} |\n")
    # Pool all instruct models of the seed (every SFT variant) for a larger sample.
    pool_c = [sum(acc(x[i], "mc_confidence") for x in [base] + list(ep.values()) + [pclean])
              for i in range(len(seeds))]
    pool_l = [sum(acc(x[i], "mc_likelihood") for x in [base] + list(ep.values()) + [pclean])
              for i in range(len(seeds))]
    nmod = 2 + len(ep)
    pool_c = [v / nmod for v in pool_c]
    pool_l = [v / nmod for v in pool_l]
    summary.append("1. " + verdict(pool_c, pool_l, "confidence", "likelihood",
                                   f"Multiple choice over all {nmod} instruct models per seed"))
    w(verdict(conf_all, like_all, "confidence", "likelihood", "On the default instruct model"))
    w("")
    w(f"Averaged over all {nmod} instruct models of each seed (the SFT-epoch and masking variants too): "
      f"confidence {fmt_pct(pool_c)}, likelihood {fmt_pct(pool_l)}. "
      + verdict(pool_c, pool_l, "confidence", "likelihood", "Pooled") + "\n")

    # 2. SFT epochs.
    w("## 2. Instruct accuracy after 1, 2, 4, 8, 12 SFT epochs\n")
    w("One pre-trained model per seed (`base/pretrained`), then whole-sequence SFT for each number of epochs "
      f"(`--pretrained ... --sft-epochs E`); the demo default ({default_epochs:g} epochs) is the last row.\n")
    w("| SFT epochs | open, all kinds % | open, city of held-out people % | MC confidence % | MC likelihood % "
      "| SFT held-out loss |\n|---|---|---|---|---|---|")
    rows = [(e, ep[e]) for e in epochs] + [(f"{default_epochs:g} (default)", base)]
    for e, runs in rows:
        w(f"| {e} | {acc_cells(runs)} | {fmt_num([x['sft']['last_eval_loss'] for x in runs], 3, per_seed=False)} |")
    first, last = ep[epochs[0]], ep[epochs[-1]]
    w("")
    v2 = verdict([acc(x, "open") for x in last], [acc(x, "open") for x in first], f"{epochs[-1]} epochs",
                 f"{epochs[0]} epoch(s)", f"SFT epochs, open questions after {epochs[-1]} vs {epochs[0]}")
    w(v2 + "\n")
    summary.append("2. " + v2)

    # 3 and 6. Samplers.
    def decode(s, name):
        d = R(s, "decode", name)
        summ = load(os.path.join(d, "stdout"))
        kinds_by_id = {}
        with open(R(s, "base", "data", "open.jsonl")) as f:
            for line in f.readlines()[1:]:
                e = json.loads(line)
                kinds_by_id[e["id"]] = e["kind"]
        city = [0, 0]
        with open(os.path.join(d, "examples.jsonl")) as f:
            for line in f:
                e = json.loads(line)
                if kinds_by_id.get(e["id"]) == "city":
                    city[0] += e["correct"]
                    city[1] += 1
        summ["city_accuracy"] = city[0] / city[1] if city[1] else None
        summ["nfe_per_question"] = summ["nfe"] / max(summ["n"], 1)
        summ["seconds_per_question"] = summ["seconds"] / max(summ["n"], 1)
        return summ

    samplers = ["reference", "threshold", "prefix", "dual", "threshold_dual"]
    label = {"reference": "reference sampler", "threshold": "threshold 0.9", "prefix": "prefix cache",
             "dual": "dual cache", "threshold_dual": "threshold 0.9 + dual cache"}
    dec = {(v, d): [decode(s, f"{v}_{d}") for s in seeds] for v in ("fixed", "variable") for d in samplers}

    w("## 3. Variable-length vs fixed-length generation\n")
    w("The default instruct model, the held-out open questions, reference sampler (one token per step, blocks "
      "of 8): fixed canvas of 32 tokens vs iLLaDA's variable length (grow by blocks of 8 up to 32, stop after "
      "the block that produced EOS). Answer tokens/s counts the answer's tokens before EOS; "
      "`illada eval ... --gen-length 32 --block-length 8 --steps 32` (fixed) or `... --steps 8 --variable-length` "
      "(steps per block), which computes in bf16 "
      "(its default) where the demo's own evaluation uses fp32, hence small differences from the demo's "
      "open-question figures.\n")
    w("| generation | accuracy % | city (held-out people) % | forward passes per question | answer tokens/s "
      "| seconds per question |\n|---|---|---|---|---|---|")
    for v in ("fixed", "variable"):
        r = dec[(v, "reference")]
        w(f"| {v} length | {fmt_pct([x['accuracy'] for x in r])} | {fmt_pct([x['city_accuracy'] for x in r])} "
          f"| {fmt_num([x['nfe_per_question'] for x in r], 1)} | {fmt_num([x.get('tokens_per_second', 0) for x in r], 1)} "
          f"| {fmt_num([x['seconds_per_question'] for x in r], 3)} |")
    fx, vr = dec[("fixed", "reference")], dec[("variable", "reference")]
    w("")
    w(verdict([x["accuracy"] for x in vr], [x["accuracy"] for x in fx], "variable", "fixed", "Accuracy"))
    nfe_ratio = [f["nfe"] / max(v["nfe"], 1) for f, v in zip(fx, vr)]
    w(f"Forward passes, fixed / variable: {fmt_num(nfe_ratio, 2)}x.\n")
    summary.append("3. " + verdict([x["accuracy"] for x in vr], [x["accuracy"] for x in fx], "variable", "fixed",
                                   "Variable vs fixed length, accuracy")
                   + f" Variable length used {fmt_num(nfe_ratio, 2, per_seed=False)}x fewer forward passes.")

    w("## 4. Whole-sequence SFT masking vs LLaDA's prompt-clean masking\n")
    w(f"The same pre-trained model per seed, {default_epochs:g} SFT epochs each; iLLaDA masks the whole "
      "window (prompt included), LLaDA never masks the prompt (`--sft-masking prompt-clean`).\n")
    w("| SFT masking | open, all kinds % | open, city % | MC confidence % | MC likelihood % |\n|---|---|---|---|---|")
    for name, runs in (("whole sequence (iLLaDA)", base), ("prompt-clean (LLaDA)", pclean)):
        w(f"| {name} | {acc_cells(runs)} |")
    w("")
    w(paired_verdicts(base, pclean, "whole-sequence", "prompt-clean") + "\n")
    summary.append("4. SFT masking. " + paired_verdicts(base, pclean, "whole-sequence", "prompt-clean").replace("\n", " "))

    w("## 5. The 30% random split in pre-training on vs off\n")
    w("Pre-training with windows split in two at a random point with probability 0.3 (iLLaDA, default) vs "
      "never (`--split-prob 0`), then the same SFT and evaluation.\n")
    w("| pre-training | held-out pre-training loss | open, all kinds % | open, city % | MC confidence % | "
      "MC likelihood % | mean forward passes (variable length) |\n|---|---|---|---|---|---|---|")
    for name, runs in (("split 0.3", base), ("no split", nosplit)):
        w(f"| {name} | {fmt_num([x['pretrain']['last_eval_loss'] for x in runs], 3)} | {acc_cells(runs)} "
          f"| {fmt_num([x['open'].get('nfe_per_question', float('nan')) for x in runs], 1)} |")
    w("")
    w(paired_verdicts(base, nosplit, "split", "no split") + "\n")
    summary.append("5. Random split in pre-training. " + paired_verdicts(base, nosplit, "split", "no split").replace("\n", " "))

    w("## 6. Threshold parallel decoding and KV caches vs the reference sampler\n")
    w("The default instruct model and held-out open questions; Fast-dLLM's rules as implemented in `illada "
      "generate` (threshold 0.9: commit every position whose confidence is at least 0.9, at least one per "
      "step; prefix/dual cache: reuse keys and values of the prompt (and of the blocks after the current one) "
      "within a block). Answer tokens/s counts the answer's tokens before EOS; "
      "speed-up = the reference sampler's seconds per question (same length mode) / this sampler's, per seed.\n")
    w("| length | sampler | accuracy % | forward passes per question | answer tokens/s | speed-up | "
      "accuracy change (points) |\n|---|---|---|---|---|---|---|")
    for v in ("fixed", "variable"):
        ref = dec[(v, "reference")]
        for d in samplers:
            r = dec[(v, d)]
            sp = [y["seconds_per_question"] / max(x["seconds_per_question"], 1e-9) for x, y in zip(r, ref)]
            dacc = [100 * (x["accuracy"] - y["accuracy"]) for x, y in zip(r, ref)]
            w(f"| {v} | {label[d]} | {fmt_pct([x['accuracy'] for x in r])} "
              f"| {fmt_num([x['nfe_per_question'] for x in r], 1)} "
              f"| {fmt_num([x.get('tokens_per_second', 0) for x in r], 1, per_seed=False)} "
              f"| {fmt_num(sp, 2, per_seed=False)}x | {fmt_num(dacc, 1, per_seed=False)} |")
    w("")
    ref, best = dec[("variable", "reference")], dec[("variable", "threshold_dual")]
    sp = [y["seconds_per_question"] / max(x["seconds_per_question"], 1e-9) for x, y in zip(best, ref)]
    summary.append(f"6. Threshold 0.9 + dual cache with variable length: {fmt_num(sp, 2, per_seed=False)}x the "
                   "reference sampler's speed; " + verdict([x["accuracy"] for x in best], [x["accuracy"] for x in ref],
                                                          "threshold + dual cache", "reference", "accuracy"))
    for v in ("fixed", "variable"):
        ref = dec[(v, "reference")]
        for d in samplers[1:]:
            w("- " + verdict([x["accuracy"] for x in dec[(v, d)]], [x["accuracy"] for x in ref], label[d],
                             "reference", f"{v} length, accuracy"))
    w("")
    w("## Commands\n")
    w("```sh\nbash scripts/reproduce.sh                     # all of the above, seeds " + " ".join(seeds) +
      "\nSEEDS=\"1\" OUT=/tmp/r RESULTS=/tmp/results.md bash scripts/reproduce.sh   # one seed\n```\n")
    w("Per seed S the script runs (R = repro_out/seed_S):\n")
    s = seeds[0]
    cmds = []
    for sub in ["base", "nosplit"] + [f"epochs_{e}" for e in epochs] + ["promptclean"] + \
               [os.path.join("decode", f"{v}_{d}") for v in ("fixed", "variable") for d in samplers]:
        with open(R(s, sub, "command")) as f:
            cmd = f.read().strip()
            cmd = "./build/illada " + cmd.split(" ", 1)[1]  # whichever binary ran it (ILLADA_BIN)
            cmds.append(cmd.replace(f"seed_{s}", "seed_S").replace(f"--seed {s}", "--seed S")
                        .replace(a.runs.rstrip("/"), "repro_out"))
    w("```sh\n" + "\n".join(cmds) + "\n```\n")
    o[summary_at:summary_at] = ["## Summary\n", "\n".join(summary) + "\n"]
    with open(a.out, "w") as f:
        f.write("\n".join(o))


if __name__ == "__main__":
    sys.exit(main())
