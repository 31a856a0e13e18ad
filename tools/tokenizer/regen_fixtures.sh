#!/usr/bin/env bash
# Regenerates the committed reference outputs of the tokenizer tests from the JavaScript-
# callable references (needs node and scripts/fetch_test_assets.sh). The live gtest
# Llama3Agreement.LiveReferences reruns the same commands and fails if these files are stale.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
fx="$root/tests/fixtures/tokenizer"
enc="node $root/tools/tokenizer/js_encode.mjs"
python3 "$root/tools/tokenizer/make_corpus.py" > "$fx/corpus.json"
python3 "$root/tools/tokenizer/make_corpus.py" --hf-extra > "$fx/corpus_hf_extra.json"
$enc --impl lenml --corpus "$fx/corpus.json" --out "$fx/llama3_lenml.json"
$enc --impl hf --corpus "$fx/corpus.json" --out "$fx/llama3_hf.json"
$enc --impl hf --corpus "$fx/corpus_hf_extra.json" --out "$fx/llama3_hf_extra.json"
if [ -f "$root/tools/tokenizer/make_synthetic_tokenizers.py" ]; then
  rm -rf "$fx/synthetic"
  python3 "$root/tools/tokenizer/make_synthetic_tokenizers.py" "$fx/synthetic"
  for t in "$fx"/synthetic/*.tokenizer.json; do
    name="$(basename "$t" .tokenizer.json)"
    $enc --impl hf --compact --tokenizer "$t" --corpus "$fx/synthetic/corpus.json" --out "$fx/synthetic/$name.hf.json"
    # With add_special_tokens only where a post-processor adds something.
    if grep -q '"post_processor": {"type": "\(TemplateProcessing\|BertProcessing\)' "$t"; then
      $enc --impl hf --compact --add-special-tokens --tokenizer "$t" --corpus "$fx/synthetic/corpus.json" \
        --out "$fx/synthetic/$name.hf_special.json"
    fi
  done
fi
# The trainer's committed output (refreshed by the C++ test, see tests/tokenizer/bpe_trainer_test.cc).
if [ -f "$fx/trained/tokenizer.json" ]; then
  $enc --impl hf --compact --tokenizer "$fx/trained" --corpus "$fx/corpus.json" --out "$fx/trained/hf.json"
  $enc --impl lenml --compact --tokenizer "$fx/trained" --corpus "$fx/corpus.json" --out "$fx/trained/lenml.json"
fi
echo "regenerated fixtures in $fx"
