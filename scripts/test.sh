#!/usr/bin/env bash
# The test command: installs dependencies and test assets, builds everything, runs all tests.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# Assets first: CMake builds the llama.cpp interop harness only when its libraries are there.
bash scripts/install_deps.sh
bash scripts/fetch_test_assets.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900
