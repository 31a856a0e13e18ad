#!/usr/bin/env python3
"""Converts public benchmark files to illada's task format (docs/eval.md).

Usage: tools/eval/convert.py FORMAT INPUT OUTPUT [--fewshot FILE --num-fewshot K]
FORMAT: arc | hellaswag | piqa | mmlu | gsm8k
  arc        ARC-Easy/Challenge JSONL (question.stem, question.choices[{label,text}], answerKey)
  hellaswag  HellaSwag JSONL (ctx or ctx_a+ctx_b, endings, label; activity_label)
  piqa       PIQA JSONL (goal, sol1, sol2) + labels file via --labels (one 0/1 per line)
  mmlu       MMLU CSV rows (question, A, B, C, D, answer letter); --subject names the header
  gsm8k      GSM8K JSONL (question, answer with '#### N')
Few-shot examples (lm-eval-harness style) come from --fewshot (a file in the same format),
the first K of it. Only the Python standard library is used.
"""
import argparse
import csv
import json
import re
import sys


def preprocess_hellaswag(text):
    # As lm-eval-harness: strip, drop bracketed artefacts, fix double spaces.
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if line:
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as e:
                    sys.exit(f"{path}: line {n}: invalid JSON ({e})")


def arc(rows):
    for r in rows:
        q = r["question"]
        labels = [c["label"] for c in q["choices"]]
        yield {"id": r.get("id"), "context": f"Question: {q['stem']}\nAnswer:",
               "choices": [c["text"] for c in q["choices"]], "gold": labels.index(r["answerKey"])}


def hellaswag(rows):
    for r in rows:
        ctx = r.get("ctx") or (r["ctx_a"] + " " + r["ctx_b"].capitalize())
        yield {"id": r.get("ind"), "context": preprocess_hellaswag(r["activity_label"] + ": " + ctx),
               "choices": [preprocess_hellaswag(e) for e in r["endings"]], "gold": int(r["label"])}


def piqa(rows, labels):
    for r, label in zip(rows, labels):
        yield {"context": f"Question: {r['goal']}\nAnswer:", "choices": [r["sol1"], r["sol2"]],
               "gold": int(label)}


def mmlu(path, subject):
    with open(path, encoding="utf-8") as f:
        for n, row in enumerate(csv.reader(f), 1):
            q, a, b, c, d, ans = row[:6]
            head = f"The following are multiple choice questions (with answers) about {subject}.\n\n" if subject else ""
            yield {"id": n, "context": f"{head}{q.strip()}\nA. {a}\nB. {b}\nC. {c}\nD. {d}\nAnswer:",
                   "choices": ["A", "B", "C", "D"], "gold": "ABCD".index(ans.strip())}


def gsm8k(rows):
    for n, r in enumerate(rows, 1):
        yield {"id": n, "type": "gen", "prompt": f"Question: {r['question']}\nAnswer:",
               "reference": r["answer"], "match": "numeric", "stop": ["Question:", "\n\n"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("format", choices=["arc", "hellaswag", "piqa", "mmlu", "gsm8k"])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--labels", help="PIQA labels file")
    ap.add_argument("--subject", default="", help="MMLU subject for the header sentence")
    ap.add_argument("--fewshot", help="file in the same format to take few-shot examples from")
    ap.add_argument("--num-fewshot", type=int, default=0)
    args = ap.parse_args()

    def convert(path):
        if args.format == "arc":
            return list(arc(read_jsonl(path)))
        if args.format == "hellaswag":
            return list(hellaswag(read_jsonl(path)))
        if args.format == "piqa":
            if not args.labels:
                sys.exit("piqa needs --labels")
            with open(args.labels) as f:
                return list(piqa(read_jsonl(path), [l.strip() for l in f if l.strip()]))
        if args.format == "mmlu":
            return list(mmlu(path, args.subject))
        return list(gsm8k(read_jsonl(path)))

    examples = convert(args.input)
    header = {"name": args.format, "target_delimiter": " ", "fewshot_delimiter": "\n\n", "few_shot": []}
    if args.fewshot and args.num_fewshot > 0:
        for e in convert(args.fewshot)[: args.num_fewshot]:
            cont = e["choices"][e["gold"]] if "choices" in e else e["reference"]
            ctx = e["context"] if "context" in e else e["prompt"]
            header["few_shot"].append({"context": ctx, "continuation": cont})
    with open(args.output, "w", encoding="utf-8") as f:
        f.write(json.dumps({"header": header}) + "\n")
        for e in examples:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
    print(f"{args.output}: {len(examples)} examples", file=sys.stderr)


if __name__ == "__main__":
    main()
