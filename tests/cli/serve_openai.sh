#!/usr/bin/env bash
# The official `openai` npm package (node_modules, installed by scripts/fetch_test_assets.sh)
# against `illada serve` on a free loopback port: tests/cli/lib/serve_openai.mjs.
# Usage: serve_openai.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -f "$src/node_modules/openai/package.json" ] ||
  { echo "FAIL: node_modules/openai is missing: run scripts/fetch_test_assets.sh" >&2; exit 1; }
source "$src/tests/cli/lib/text_model.sh"
text_model "$bin" "$tmp/m"
# seed 1's random weights answer EOS at once; seed 5's give answers of text (odd, but text)
"$bin" init --config "$tmp/m/model_config.json" --out "$tmp/m" --seed 5 > /dev/null 2>&1
node "$src/tests/cli/lib/serve_openai.mjs" "$bin" "$tmp/m"
