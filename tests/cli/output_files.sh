#!/usr/bin/env bash
# Where results are written (util/file.h, OutputFile): a regular file or a new path is written
# atomically (a temporary file renamed over it, its permissions kept; a failed run leaves the
# old file as it was); a FIFO, a device and a symlink are written through, never replaced
# (before, --out /dev/null as root would have replaced the device with a file); '-' is standard
# output. Checked for logits --out and eval --out, and for the directory outputs.
# Usage: output_files.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
model=$src/tests/fixtures/tiny_mha
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "output_files: $*" >&2; exit 1; }
cd "$tmp"
size=$((3 * 128 * 4))  # logits of 3 ids, vocab 128, float32

# Regular file, replaced atomically with its permissions.
echo old > reg.f32 && chmod 640 reg.f32
"$bin" logits --model "$model" --ids 1,2,3 --out reg.f32 >/dev/null
[ "$(stat -c %s reg.f32)" = $size ] || fail "regular file not rewritten"
[ "$(stat -c %a reg.f32)" = 640 ] || fail "permissions of the replaced file changed: $(stat -c %a reg.f32)"
# A failed run (bad id) leaves the old file untouched and no temporary file.
cp reg.f32 keep.f32
if "$bin" logits --model "$model" --ids 1,999 --out reg.f32 2>err; then fail "bad id accepted"; fi
cmp -s reg.f32 keep.f32 || fail "a failed run changed the output file"
ls reg.f32.tmp.* >/dev/null 2>&1 && fail "a temporary file was left behind"

# Symlink: the target gets the data, the link stays a link.
echo old > target.f32
ln -s target.f32 link.f32
"$bin" logits --model "$model" --ids 1,2,3 --out link.f32 >/dev/null
[ -L link.f32 ] || fail "the symlink was replaced by a file"
[ "$(stat -c %s target.f32)" = $size ] || fail "the symlink's target was not written"
ln -s newtarget.f32 dangling.f32
"$bin" logits --model "$model" --ids 1,2,3 --out dangling.f32 >/dev/null
[ -L dangling.f32 ] && [ "$(stat -c %s newtarget.f32)" = $size ] || fail "dangling symlink not followed"

# FIFO: written through (a reader gets the bytes), still a FIFO afterwards.
mkfifo pipe.f32
cat pipe.f32 > from_pipe.f32 &
reader=$!
timeout 30 "$bin" logits --model "$model" --ids 1,2,3 --out pipe.f32 >/dev/null || fail "writing to a FIFO failed"
wait $reader
[ -p pipe.f32 ] || fail "the FIFO was replaced"
cmp -s from_pipe.f32 target.f32 || fail "the FIFO's reader got other bytes"

# Device: /dev/null stays a character device.
"$bin" logits --model "$model" --ids 1,2,3 --out /dev/null >/dev/null || fail "--out /dev/null failed"
[ -c /dev/null ] || fail "/dev/null is no longer a device"

# '-': standard output (the shape line goes to stderr then).
"$bin" logits --model "$model" --ids 1,2,3 --out - > stdout.f32 2>shape.txt
cmp -s stdout.f32 target.f32 || fail "--out - did not write the logits to stdout"
grep -q '"shape":\[3,128\]' shape.txt || fail "shape line: $(cat shape.txt)"

# A directory is not a file.
mkdir adir
if "$bin" logits --model "$model" --ids 1 --out adir 2>err; then fail "a directory accepted as --out"; fi
grep -q "is a directory" err || fail "directory message: $(cat err)"

# eval --out: through a FIFO, and '-' (standard output, before the summary).
source "$src/tests/cli/lib/text_model.sh"
text_model "$bin" m
printf '{"context": "The cat", "choices": ["sat", "ran"], "gold": 0}\n' > t.jsonl
mkfifo res.fifo
cat res.fifo > from_eval.jsonl &
reader=$!
timeout 60 "$bin" eval --model m --task t.jsonl --out res.fifo --quiet >/dev/null || fail "eval --out FIFO failed"
wait $reader
[ -p res.fifo ] || fail "eval replaced the FIFO"
grep -q '"line":1' from_eval.jsonl || fail "the FIFO's reader got: $(cat from_eval.jsonl)"
"$bin" eval --model m --task t.jsonl --out - --quiet > both.txt
head -1 both.txt | grep -q '"line":1' || fail "eval --out - did not write the results to stdout: $(cat both.txt)"

# Directory outputs refuse a path that is a file.
echo x > afile
if "$bin" init --config "$model/config.json" --out afile 2>err; then fail "init --out FILE accepted"; fi
grep -q "exists and is not a directory" err || fail "init message: $(cat err)"
echo "output_files: ok"
