#!/usr/bin/env bash
# The main job on a built-in default: builds illada, then shows the bundled tiny iLLaDA-style
# checkpoint (GQA, tied head) and runs one forward pass over it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/build.sh
model=tests/fixtures/tiny_gqa
./build/illada info --model "$model"
./build/illada logits --model "$model" --ids 0,17,42,5,5,5,1 --dtype bf16 --out build/demo_logits.f32
