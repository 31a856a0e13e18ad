#!/usr/bin/env bash
# Builds the example program of docs/c_api.md from outside the source tree against an
# installed prefix (CMake package or pkg-config, with the documented recipe) and checks that
# it generates the same ids and text as the installed `illada generate`.
# Usage: consumer.sh cmake|pkgconfig PREFIX SOURCE_DIR WORK_DIR
set -euo pipefail
kind=$1
prefix=$(realpath -m "$2")
src=$(realpath "$3")
work=$(realpath -m "$4")
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"
# The documented files, byte for byte: the block after each "<!-- example: NAME -->" marker.
extract() {
  awk -v name="$1" '$0 == "<!-- example: " name " -->" {found=1; next}
                    found && /^```/ {if (inside) exit; inside=1; next}
                    inside {print}' "$src/docs/c_api.md"
}
extract generate.c > "$work/generate.c"
[ -s "$work/generate.c" ] || fail "no generate.c example in docs/c_api.md"
case "$kind" in
  cmake)
    extract CMakeLists.txt > "$work/CMakeLists.txt"
    [ -s "$work/CMakeLists.txt" ] || fail "no CMakeLists.txt example in docs/c_api.md"
    cmake -S "$work" -B "$work/out" -DCMAKE_PREFIX_PATH="$prefix" > "$work/configure.log" 2>&1 ||
      fail "configure: $(cat "$work/configure.log")"
    cmake --build "$work/out" > "$work/build.log" 2>&1 || fail "build: $(cat "$work/build.log")"
    exe=$work/out/generate
    ;;
  pkgconfig)
    recipe=$(extract pkg-config | sed "s|PREFIX|$prefix|g")
    [ -n "$recipe" ] || fail "no pkg-config recipe in docs/c_api.md"
    (cd "$work" && eval "$recipe") > "$work/build.log" 2>&1 || fail "build: $(cat "$work/build.log")"
    exe=$work/generate
    ;;
  *) fail "unknown kind $kind" ;;
esac
# Nothing but the installed prefix: no LD_LIBRARY_PATH, no build tree.
unset LD_LIBRARY_PATH
loaded=$(ldd "$exe" | awk '/libillada/ {print $3}')
[ -n "$loaded" ] && [ "$(realpath "$loaded")" = "$(realpath "$prefix/lib/libillada.so")" ] ||
  fail "$exe does not load the installed library: $(ldd "$exe")"

cli=$prefix/bin/illada
json_ids() { python3 -c "import json,sys; print(json.load(sys.stdin)['ids'])"; }
# Ids on a model without tokenizer.
model=$src/tests/fixtures/tiny_gqa
got=$("$exe" "$model" --ids 1 2 3 2> "$work/stderr")
want=$("$cli" generate --model "$model" --prompt-ids 1,2,3 --gen-length 32 --block-length 8 --steps 16 --format json | json_ids)
[ "$got" = "$want" ] || fail "ids: example printed $got, illada generate $want"
grep -q "16 forward passes" "$work/stderr" || fail "the step display: $(cat "$work/stderr")"
# Text on the same model with a tokenizer beside it.
text_model=$work/text_model
mkdir -p "$text_model"
cp "$model/config.json" "$model/model.safetensors" "$src/tests/fixtures/generate/tiny_tokenizer/"* "$text_model/"
"$exe" "$text_model" "hello world" > "$work/out.txt" 2> "$work/stderr" || fail "text prompt: $(cat "$work/stderr")"
"$cli" generate --model "$text_model" --prompt "hello world" --gen-length 32 --block-length 8 --steps 16 \
  --format json > "$work/cli.json"
python3 - "$work/out.txt" "$work/cli.json" <<'PY' || fail "text prompt: the example and illada generate differ"
import json, sys
lines = open(sys.argv[1], "rb").read().split(b"\n", 1)
cli = json.load(open(sys.argv[2]))
assert json.loads(lines[0]) == cli["ids"], (lines[0], cli["ids"])
assert lines[1][:-1].decode("utf-8", "replace") == cli["text"], (lines[1], cli["text"])
PY
# Errors reach the user as messages, with a failing exit status.
if "$exe" /no/such/model --ids 1 2> "$work/stderr"; then fail "a missing model was accepted"; fi
grep -q "/no/such/model" "$work/stderr" || fail "error message: $(cat "$work/stderr")"
if "$exe" "$model" "text without tokenizer" 2> "$work/stderr"; then fail "text without a tokenizer was accepted"; fi
grep -q "tokenizer" "$work/stderr" || fail "error message: $(cat "$work/stderr")"
echo "consumer ($kind): the documented example builds against $prefix and generates as illada generate"
