#!/usr/bin/env bash
# The web page of `illada serve` in headless Chromium (Debian's chromium, installed by
# scripts/install_deps.sh; playwright-core from node_modules): tests/cli/lib/serve_web.mjs.
# ILLADA_SCREENSHOT=PATH keeps the screenshot (docs/serve_page.png was made so).
# Usage: serve_web.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ -x /usr/bin/chromium ] || [ -n "${CHROMIUM:-}" ] ||
  { echo "FAIL: /usr/bin/chromium is missing: run scripts/install_deps.sh" >&2; exit 1; }
[ -f "$src/node_modules/playwright-core/package.json" ] ||
  { echo "FAIL: node_modules/playwright-core is missing: run scripts/fetch_test_assets.sh" >&2; exit 1; }
source "$src/tests/cli/lib/text_model.sh"
text_model "$bin" "$tmp/m"
# seed 1's random weights answer EOS at once; seed 5's give answers of text (odd, but text)
"$bin" init --config "$tmp/m/model_config.json" --out "$tmp/m" --seed 5 > /dev/null 2>&1
node "$src/tests/cli/lib/serve_web.mjs" "$bin" "$tmp/m" "${ILLADA_SCREENSHOT:-$tmp/page.png}"
