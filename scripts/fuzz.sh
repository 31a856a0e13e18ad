#!/usr/bin/env bash
# Builds the libFuzzer target fuzz/NAME.cc (clang, ASan + UBSan) and runs it for SECONDS seconds
# on a small generated seed corpus. Exits non-zero if the build fails or the fuzzer finds a bug.
# Usage: scripts/fuzz.sh NAME SECONDS      e.g. scripts/fuzz.sh safetensors_fuzz 60
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 NAME SECONDS   (builds fuzz/NAME.cc)" >&2
  exit 2
fi
name=$1
seconds=$2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
[ -f "fuzz/$name.cc" ] || { echo "fuzz.sh: fuzz/$name.cc does not exist" >&2; exit 2; }

# The library sources each target needs (util comes as an archive, so only what is used links).
case "$name" in
  safetensors_fuzz) lib_srcs=(src/io/safetensors.cc) ;;
  tokenizer_json_fuzz) lib_srcs=(src/tokenizer/*.cc src/io/gguf.cc); extra_libs=(-lpcre2-8) ;;
  token_shards_fuzz) lib_srcs=(src/io/token_shards.cc) ;;
  gguf_fuzz) lib_srcs=(src/io/gguf.cc) ;;
  *) echo "fuzz.sh: add the library sources of $name to the case in $0" >&2; exit 2 ;;
esac
util_srcs=(src/util/*.cc)

cxx=${CXX_FUZZ:-clang++}
# Per checkout (several worktrees may fuzz at once): under build/, which git ignores.
work=${ILLADA_FUZZ_DIR:-$root/build/fuzz}
bin=$work/$name
objs=$work/obj_$name
mkdir -p "$work" "$objs"
flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I src)
if grep -qs '<omp.h>' "${util_srcs[@]}" "${lib_srcs[@]}"; then flags+=(-fopenmp); fi

# Rebuild only when a source, header or this script is newer than the binary.
if [ ! -x "$bin" ] || [ -n "$(find src "fuzz/$name.cc" "$0" -newer "$bin" -print -quit)" ]; then
  echo "fuzz.sh: building $bin"
  util_objs=()
  for src in "${util_srcs[@]}"; do
    obj=$objs/$(basename "$src" .cc).o
    # -fsanitize=fuzzer-no-link: instrument without a second main() in the archive.
    "$cxx" "${flags[@]/-fsanitize=fuzzer,address,undefined/-fsanitize=fuzzer-no-link,address,undefined}" \
      -c "$src" -o "$obj"
    util_objs+=("$obj")
  done
  rm -f "$objs/libutil.a"
  ar rcs "$objs/libutil.a" "${util_objs[@]}"
  "$cxx" "${flags[@]}" "fuzz/$name.cc" "${lib_srcs[@]}" "$objs/libutil.a" ${extra_libs[@]+"${extra_libs[@]}"} -o "$bin.tmp.$$"
  mv -f "$bin.tmp.$$" "$bin"
fi

# Seeds: one valid file and a few broken ones, so the fuzzer starts past the length field.
seeds=$work/seeds_$name
corpus=$work/corpus_$name  # kept between runs, so coverage accumulates
rm -rf "$seeds"
mkdir -p "$seeds" "$corpus" "$work/artifacts"

# st_file OUT HEADER NDATA: u64 little-endian length of HEADER, HEADER, NDATA zero bytes.
st_file() {
  local out=$1 header=$2 ndata=$3 len=${#2} i
  : > "$out"
  for i in 0 1 2 3 4 5 6 7; do
    printf "\\$(printf %03o $(((len >> (8 * i)) & 255)))" >> "$out"
  done
  printf '%s' "$header" >> "$out"
  head -c "$ndata" /dev/zero >> "$out"
}

case "$name" in
  safetensors_fuzz)
    st_file "$seeds/valid" '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]},"c":{"dtype":"I64","shape":[],"data_offsets":[12,20]}}' 20
    st_file "$seeds/empty" '{}      ' 0
    st_file "$seeds/zero_dim" '{"z":{"dtype":"F16","shape":[0,3],"data_offsets":[0,0]},"u":{"dtype":"U8","shape":[3],"data_offsets":[0,3]}}' 3
    st_file "$seeds/bad_dtype" '{"a":{"dtype":"F8","shape":[2],"data_offsets":[0,2]}}' 2
    st_file "$seeds/overlap" '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}' 8
    st_file "$seeds/wrong_size" '{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}' 12
    st_file "$seeds/not_object" '[1,2,{"a":null}]' 0
    printf '\xff\xff\xff\xff\xff\xff\xff\xff{}' > "$seeds/huge_length"
    printf '\x05\x00' > "$seeds/truncated"
    ;;
  tokenizer_json_fuzz)
    # A small real byte-level BPE tokenizer, a Metaspace one, and broken variants.
    printf '%s' '{"model":{"type":"BPE","vocab":{"a":0,"b":1,"ab":2,"\u0120":3},"merges":["a b"]},"pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},"decoder":{"type":"ByteLevel"},"added_tokens":[{"id":4,"content":"<|x|>","special":true}]}' > "$seeds/bytelevel"
    printf '%s' '{"normalizer":{"type":"Sequence","normalizers":[{"type":"NFKC"},{"type":"Replace","pattern":{"String":" "},"content":"\u2581"}]},"pre_tokenizer":{"type":"Metaspace","replacement":"\u2581","prepend_scheme":"first"},"model":{"type":"BPE","vocab":{"<unk>":0,"\u2581":1,"a":2},"merges":[["\u2581","a"]],"unk_token":"<unk>","byte_fallback":true},"decoder":{"type":"Sequence","decoders":[{"type":"ByteFallback"},{"type":"Fuse"},{"type":"Metaspace","replacement":"\u2581"}]}}' > "$seeds/metaspace"
    printf '%s' '{"model":{"type":"BPE","vocab":{},"merges":[]},"pre_tokenizer":{"type":"Split","pattern":{"Regex":"(\\p{L}+"},"behavior":"Isolated"}}' > "$seeds/bad_regex"
    printf '%s' '{"model":{"type":"Unigram"}}' > "$seeds/unsupported"
    ;;
  token_shards_fuzz)
    # shard OUT FLAGS VOCAB TOKEN...: a version-1 shard with a correct checksum (prompt bits,
    # all set, with flag 1), written by a few lines of python3.
    shard() {
      python3 - "$@" <<'PY'
import struct, sys
out, flags, vocab, toks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), [int(t) for t in sys.argv[4:]]
payload = struct.pack(f"<{len(toks)}I", *toks)
if flags & 1:
    payload += bytes([0xff] * ((len(toks) + 7) // 8))
h = 0xcbf29ce484222325
for b in payload:
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
open(out, "wb").write(b"ILLTOKS\0" + struct.pack("<IIQQII", 1, flags, len(toks), h, vocab, 0) + payload)
PY
    }
    shard "$seeds/valid" 0 300 5 17 299 0 42 7
    shard "$seeds/valid_prompt" 1 64 1 2 3 4 5 6 7 8 9 10 11
    shard "$seeds/empty" 0 10
    shard "$seeds/bad_token" 0 10 3 10 4
    head -c 30 "$seeds/valid" > "$seeds/truncated_header"
    head -c 50 "$seeds/valid" > "$seeds/truncated_tokens"
    { printf 'NOTTOKS\0'; tail -c +9 "$seeds/valid"; } > "$seeds/bad_magic"
    { head -c 8 "$seeds/valid"; printf '\x02\x00\x00\x00'; tail -c +13 "$seeds/valid"; } > "$seeds/bad_version"
    { head -c 16 "$seeds/valid"; printf '\xff\xff\xff\xff\xff\xff\xff\x3f'; tail -c +25 "$seeds/valid"; } > "$seeds/huge_count"
    ;;
  gguf_fuzz)
    # A valid little file (two keys, a string array, a q8_0 and an f32 tensor) and broken ones,
    # written by a few lines of python3.
    python3 - "$seeds" <<'PY'
import struct, sys
out = sys.argv[1]
def s(x): return struct.pack("<Q", len(x)) + x
def kv_u32(k, v): return s(k) + struct.pack("<II", 4, v)
def tensor(name, ne, t, off): return s(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}q", *ne) + struct.pack("<IQ", t, off)
def pad(b, a=32): return b + b"\0" * ((a - len(b) % a) % a)
def gguf(kvs, tensors, data, n_t=None, n_kv=None, version=3):
    h = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_t is None else n_t, len(kvs) if n_kv is None else n_kv)
    return pad(h + b"".join(kvs) + b"".join(tensors)) + data
arr = s(b"tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + s(b"ab") + s(b"\xe2\x96\x81c")
kvs = [kv_u32(b"general.alignment", 32), s(b"general.architecture") + struct.pack("<I", 8) + s(b"llada"), arr]
ts = [tensor(b"blk.0.attn_q.weight", [32, 2], 8, 0), tensor(b"output_norm.weight", [3], 0, 96)]
data = pad(bytes(range(68))) + pad(b"\x01" * 12)
open(f"{out}/valid", "wb").write(gguf(kvs, ts, data))
open(f"{out}/no_tensors", "wb").write(gguf(kvs, [], b""))
open(f"{out}/huge_counts", "wb").write(gguf(kvs, ts, data, n_t=1 << 40))
open(f"{out}/bad_type", "wb").write(gguf(kvs, [tensor(b"w", [32], 4, 0)], pad(b"\0" * 18)))
open(f"{out}/overlap", "wb").write(gguf([], [tensor(b"a", [16], 0, 0), tensor(b"b", [4], 0, 32)], pad(b"\0" * 96)))
open(f"{out}/bad_align", "wb").write(gguf([kv_u32(b"general.alignment", 24)], ts, data))
open(f"{out}/truncated", "wb").write(gguf(kvs, ts, data)[:100])
PY
    ;;
esac

dict=$work/$name.dict
if [ "$name" = token_shards_fuzz ]; then
  printf '"%s"\n' 'ILLTOKS\x00' '\x01\x00\x00\x00' '\xff\xff\xff\xff' '\x00\x00\x00\x80' > "$dict"
elif [ "$name" = gguf_fuzz ]; then
  printf '"%s"\n' 'GGUF' '\x03\x00\x00\x00' '\x09\x00\x00\x00' '\x08\x00\x00\x00' \
    '\x0c\x00\x00\x00' '\xff\xff\xff\xff\xff\xff\xff\x7f' general.alignment general.architecture \
    tokenizer.ggml.tokens '\x20\x00\x00\x00\x00\x00\x00\x00' > "$dict"
elif [ "$name" = tokenizer_json_fuzz ]; then
  printf '"%s"\n' type BPE ByteLevel Metaspace Split Sequence NFC NFKC Replace Prepend Digits \
    ByteFallback Fuse Strip vocab merges added_tokens pre_tokenizer normalizer decoder \
    post_processor TemplateProcessing pattern Regex String behavior invert special content \
    byte_fallback ignore_merges unk_token add_prefix_space use_regex > "$dict"
else
cat > "$dict" <<'EOF'
"dtype"
"shape"
"data_offsets"
"__metadata__"
"F32"
"BF16"
"F16"
"F64"
"I64"
"I32"
"I16"
"I8"
"U8"
"BOOL"
"18446744073709551615"
"9223372036854775807"
"-1"
"1e999"
"\\u0000"
EOF
fi

echo "fuzz.sh: running $name for ${seconds}s (artifacts in $work/artifacts)"
# Leak checks stay on: a leak on the error path is a bug too.
set +e
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$bin" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -dict="$dict" -artifact_prefix="$work/artifacts/$name-" -print_final_stats=1 \
  "$corpus" "$seeds" > "$work/$name.log" 2>&1
rc=$?
set -e
if [ "$rc" -ne 0 ]; then
  grep -v -e '^"' -e 'Uses: ' "$work/$name.log" | tail -n 120
  echo "fuzz.sh: $name FAILED (exit $rc; full log $work/$name.log); reproduce with: $bin $work/artifacts/$name-<crash file>" >&2
  exit 1
fi
grep -E '^(Done|stat::)' "$work/$name.log"
echo "fuzz.sh: $name passed"
