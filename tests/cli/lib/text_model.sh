# Sourced by tests/cli/*.sh (not a test itself): a byte-level BPE tokenizer of 300 tokens
# trained on generated sentences and a random model over its vocabulary (d 32, 2 layers,
# context 256 tokens), together in one model directory.
# Usage: text_model ILLADA_BIN DIR
text_model() {
  local bin="$1" dir="$2"
  mkdir -p "$dir"
  for i in $(seq 1 200); do echo "The cat $i sat on mat $((i * 7)). A dog ran to park $((i % 13))."; done > "$dir/text.txt"
  "$bin" tokenizer train --input "$dir/text.txt" --vocab-size 300 --out "$dir" --quiet > /dev/null
  local mask eos
  mask=$("$bin" tokenize --tokenizer "$dir" --text "<|mdm_mask|>" --no-special)
  eos=$("$bin" tokenize --tokenizer "$dir" --text "<|endoftext|>" --no-special)
  cat > "$dir/model_config.json" <<JSON
{"d_model": 32, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "mlp_hidden_size": 64, "vocab_size": 300,
 "max_sequence_length": 256, "weight_tying": true, "mask_token_id": $mask, "eos_token_id": $eos}
JSON
  "$bin" init --config "$dir/model_config.json" --out "$dir" --seed 1 > /dev/null 2>&1
}
