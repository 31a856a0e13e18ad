#!/usr/bin/env bash
# End-to-end checks of `illada serve` on a free loopback port (tests/cli/lib/serve_routes.py):
# every route, non-streaming = streaming = `illada generate` at temperature 0, the denoising
# stream, auth, the 4xx answers, step-level batching with batch invariance, SIGTERM exit.
# Usage: serve.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$src/tests/cli/lib/text_model.sh"
text_model "$bin" "$tmp/m"
# seed 1's random weights answer EOS at once; seed 5's give answers of text (odd, but text)
"$bin" init --config "$tmp/m/model_config.json" --out "$tmp/m" --seed 5 > /dev/null 2>&1
python3 "$src/tests/cli/lib/serve_routes.py" "$bin" "$tmp/m"
