#!/usr/bin/env bash
# The test command: installs dependencies and test assets, builds everything, runs all tests.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash scripts/build.sh
if [ -f scripts/fetch_test_assets.sh ]; then bash scripts/fetch_test_assets.sh; fi
ctest --test-dir build --output-on-failure -j"$(nproc)" --timeout 900
