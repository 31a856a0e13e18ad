#!/usr/bin/env bash
# The main job on a built-in default (until `illada demo` trains its own model): builds illada,
# then shows the bundled tiny iLLaDA-style checkpoint (GQA, tied head, random weights), runs
# one forward pass over it and generates with the fast variable-length sampler.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/build.sh
model=tests/fixtures/tiny_gqa
./build/illada info --model "$model"
./build/illada logits --model "$model" --ids 0,17,42,5,5,5,1 --dtype bf16 --out build/demo_logits.f32
echo "--- masked-diffusion generation (iLLaDA variable length, Fast-dLLM threshold + dual cache):"
./build/illada generate --model "$model" --prompt-ids 0,17,42 --variable-length --max-length 64 \
  --block-length 8 --steps 64 --threshold 0.5 --cache dual --format json
