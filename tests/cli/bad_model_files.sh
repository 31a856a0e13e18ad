#!/usr/bin/env bash
# Model files that would give a wrong result, a hang or a crash must give a clear error (exit
# status != 0) instead:
#  - weights holding NaN or Inf (in the first layer, in the last, as +Inf): generate (which
#    printed token 0 repeatedly), score (which printed nan and named a winner), eval and logits
#    fail at run time, naming non-finite logits; --check-tensors (generate, info) names the
#    tensor before anything runs;
#  - config.json sizes that overflow or cannot be allocated (d_model 1e12 gave a negative
#    parameter count; a large but valid size gave std::bad_alloc) and ids that wrap around;
#  - files that are not files: a FIFO as config.json, model.safetensors or tokenizer.json
#    (a reader used to block forever), /dev/zero as tokenizer.json, a directory.
# Usage: bad_model_files.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "bad_model_files: $*" >&2; exit 1; }
cd "$tmp"

expect_error() {  # expect_error PATTERN ARGS...: exit != 0 (not a crash) within 30 s, message matches
  local pattern=$1; shift
  local rc=0
  timeout 30 "$bin" "$@" >out 2>err || rc=$?
  [ "$rc" -ne 0 ] || fail "accepted (exit 0): $* -> $(head -c 300 out)"
  [ "$rc" -ne 124 ] || fail "hung (killed after 30 s): $*"
  [ "$rc" -lt 128 ] || fail "crashed (signal $((rc - 128))): $* -> $(cat err)"
  grep -q -- "$pattern" err || fail "message for '$*' lacks '$pattern': $(cat err)"
}

# Weights with a non-finite value: copies of tiny_gqa with one element replaced.
poison() {  # poison DIR TENSOR VALUE(nan|inf)
  cp -r "$src/tests/fixtures/tiny_gqa" "$1"
  python3 - "$1/model.safetensors" "$2" "$3" <<'PY'
import json, struct, sys
path, name, what = sys.argv[1:]
data = bytearray(open(path, "rb").read())
n = struct.unpack("<Q", data[:8])[0]
t = json.loads(data[8:8 + n])[name]
off = 8 + n + t["data_offsets"][0] + 2 * 7
assert t["dtype"] == "BF16"
data[off:off + 2] = struct.pack("<H", 0x7fc0 if what == "nan" else 0x7f80)
open(path, "wb").write(data)
PY
}
poison nan_first model.transformer.blocks.0.q_proj.weight nan
poison inf_last model.transformer.blocks.2.ff_out.weight inf
poison nan_norm model.transformer.ln_f.weight nan
for m in nan_first inf_last nan_norm; do
  for dtype in bf16 f32; do
    expect_error "non-finite logit" generate --model $m --prompt-ids 2,3,4 --gen-length 8 --block-length 8 --steps 8 --dtype $dtype --format json
  done
  expect_error "non-finite logit" score --model $m --prompt-ids 2,3 --choice-ids "4;6,7" --format json
  expect_error "non-finite logit" score --model $m --prompt-ids 2,3 --choice-ids "4;6,7" --method likelihood --mc-num 4
  expect_error "non-finite logit" logits --model $m --prompt-ids 2,3 --out l.f32
  [ ! -e l.f32 ] || fail "logits left an output file for a broken model"
done
# quantize refuses them and leaves no file (the check scans each tensor after reading it).
expect_error "tensor 'model.transformer.blocks.0.q_proj.weight' holds a non-finite value (nan) at row 0, column 7" \
  quantize --model nan_first --type q8_0 --out poisoned.gguf
expect_error "tensor 'model.transformer.blocks.2.ff_out.weight' holds a non-finite value (inf) at row 0, column 7" \
  quantize --model inf_last --type q4_k --out poisoned.gguf
[ ! -e poisoned.gguf ] || fail "quantize left an output file for a broken model"
expect_error "check-tensors" generate --model nan_first --prompt-ids 2,3 --gen-length 8
expect_error "tensor 'model.transformer.blocks.0.q_proj.weight' holds NaN at element 7" \
  generate --model nan_first --prompt-ids 2,3 --gen-length 8 --check-tensors
expect_error "tensor 'model.transformer.blocks.2.ff_out.weight' holds +Inf at element 7" info --model inf_last --check-tensors
"$bin" info --model "$src/tests/fixtures/tiny_gqa" --check-tensors >/dev/null || fail "info --check-tensors on a good model"
"$bin" generate --model "$src/tests/fixtures/tiny_gqa" --prompt-ids 2,3 --gen-length 8 --check-tensors >/dev/null ||
  fail "--check-tensors on a good model"

# Sizes from config.json.
mkdir big
cfg() { python3 -c "
import json,sys
c = json.load(open('$src/tests/fixtures/tiny_gqa/config.json'))
c.update(json.loads(sys.argv[1]))
json.dump(c, open('big/config.json', 'w'))" "$1"; }
cfg '{"d_model": 1000000000000}'
expect_error "key 'd_model' = 1000000000000 is larger than illada supports" info --model big
cfg '{"vocab_size": 9000000000000000000, "embedding_size": 9000000000000000000}'
expect_error "key 'vocab_size'" info --model big
cfg '{"mask_token_id": 4294967301}'
expect_error "key 'mask_token_id' = 4294967301 is not a token id" info --model big
cfg '{"n_layers": 1024, "d_model": 65536, "n_heads": 64, "n_kv_heads": 64, "mlp_hidden_size": 262144}'
expect_error "needs .* of memory; this machine has" init --config big/config.json --out bigmodel
[ ! -e bigmodel/model.safetensors ] || fail "init wrote weights for an impossible model"
"$bin" info --model "$src/tests/fixtures/tiny_gqa" --format json | python3 -c "
import json,sys; j=json.load(sys.stdin); assert j['n_params'] > 0, j" || fail "info n_params"

# Files that are not regular files must not block or stream forever.
mkdir fifo_cfg fifo_st fifo_tok zero_tok
cp "$src/tests/fixtures/tiny_gqa/model.safetensors" fifo_cfg/ && mkfifo fifo_cfg/config.json
cp "$src/tests/fixtures/tiny_gqa/config.json" fifo_st/ && mkfifo fifo_st/model.safetensors
cp "$src/tests/fixtures/tiny_gqa/"* fifo_tok/ && mkfifo fifo_tok/tokenizer.json
cp "$src/tests/fixtures/tiny_gqa/"* zero_tok/ && ln -s /dev/zero zero_tok/tokenizer.json
expect_error "config.json: is a FIFO (named pipe), expected a regular file" info --model fifo_cfg
expect_error "config.json: is a FIFO" generate --model fifo_cfg --prompt-ids 2,3
expect_error "model.safetensors: is a FIFO" info --model fifo_st
expect_error "model.safetensors: is a FIFO" generate --model fifo_st --prompt-ids 2,3
expect_error "tokenizer.json: is a FIFO" generate --model fifo_tok --prompt hello
expect_error "tokenizer.json: is a character device" generate --model zero_tok --prompt hello
expect_error "tokenizer.json: is a character device" tokenize --tokenizer zero_tok --prompt hello
mkdir -p dir_cfg/config.json
expect_error "config.json: is a directory" info --model dir_cfg
echo "bad_model_files: ok"
