#!/usr/bin/env bash
# `illada serve` under long requests (tests/cli/lib/serve_lifecycle.py): cancellation when the
# client disconnects, 429 with Retry-After on a full queue, the deadline (504), graceful and
# cancelling shutdown on SIGTERM. The model is wider than the other tests' so that one request
# takes seconds. Usage: serve_lifecycle.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
source "$src/tests/cli/lib/text_model.sh"
text_model "$bin" "$tmp/m"
mkdir -p "$tmp/big"
cp "$tmp"/m/tokenizer*.json "$tmp/big/"
python3 - "$tmp/m/model_config.json" "$tmp/big/model_config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c.update(d_model=256, n_layers=4, n_heads=8, n_kv_heads=4, mlp_hidden_size=768, max_sequence_length=512)
json.dump(c, open(sys.argv[2], "w"))
PY
"$bin" init --config "$tmp/big/model_config.json" --out "$tmp/big" --seed 2 > /dev/null 2>&1
python3 "$src/tests/cli/lib/serve_lifecycle.py" "$bin" "$tmp/big"
