#!/usr/bin/env bash
# The main job on a built-in default: builds illada, then `illada demo` generates its own
# data, trains a BPE tokenizer, pre-trains a small iLLaDA model, runs whole-sequence SFT,
# answers held-out questions with variable-length generation and scores multiple choice with
# both rules; the report lands in demo_out/. Extra arguments go to `illada demo` (--help).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/build.sh
./build/illada demo "$@"
