#!/usr/bin/env bash
# Text inputs that are not what they claim must be refused clearly (exit status != 0), never
# turned into a result: eval on an empty or a binary task file (accuracy 0.0 with exit 0
# before), data prepare and tokenizer train on a binary file or a file that is not UTF-8 (they
# tokenized it without a word), an empty corpus, a device or a directory as input. A task file
# may come through a pipe. Examples too long for the model's context are skipped with their
# line numbers and counted; a run that can evaluate nothing fails and writes no --out file.
# Usage: bad_text_inputs.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "bad_text_inputs: $*" >&2; exit 1; }
cd "$tmp"

expect_error() {  # expect_error PATTERN ARGS...
  local pattern=$1; shift
  local rc=0
  timeout 60 "$bin" "$@" >out 2>err || rc=$?
  [ "$rc" -ne 0 ] || fail "accepted (exit 0): $* -> $(head -c 300 out)"
  [ "$rc" -ne 124 ] || fail "hung: $*"
  [ "$rc" -lt 128 ] || fail "crashed (signal $((rc - 128))): $*"
  grep -q -- "$pattern" err || fail "message for '$*' lacks '$pattern': $(cat err)"
}

# A tokenizer and a random model over its vocabulary (context 256 tokens).
source "$src/tests/cli/lib/text_model.sh"
text_model "$bin" tok
cp tok/text.txt text.txt
model=tok
head -c 20000 /dev/urandom > binary.bin
printf 'plain text\nwith a NUL \0 byte\n' > nul.txt
printf 'caf\xe9 au lait\n' > latin1.txt
: > empty.jsonl
printf '\n\n   \n' > blank.jsonl

# eval: empty, blank, binary, all lines malformed.
expect_error "no examples (the task file is empty" eval --model "$model" --tokenizer tok --task empty.jsonl
expect_error "no examples" eval --model "$model" --tokenizer tok --task blank.jsonl
expect_error "looks like a binary file" eval --model "$model" --tokenizer tok --task binary.bin
expect_error "line 2 (byte .*) holds a NUL byte" eval --model "$model" --tokenizer tok --task nul.txt
printf 'not json\n{"also": "not a task"}\n' > junk.jsonl
expect_error "none of its 2 non-empty lines is a valid example" eval --model "$model" --tokenizer tok --task junk.jsonl
expect_error "is a character device" eval --model "$model" --tokenizer tok --task /dev/zero
expect_error "is a directory" eval --model "$model" --tokenizer tok --task .
# ... but a pipe is a fine task file.
printf '{"context": "The cat", "choices": ["sat", "ran"], "gold": 0}\n' > mc.jsonl
"$bin" eval --model "$model" --tokenizer tok --task <(cat mc.jsonl) --quiet >res.json || fail "eval from a pipe"
grep -q '"n": 1' res.json || fail "eval from a pipe: $(cat res.json)"

# data prepare and tokenizer train.
expect_error "binary.bin: line .* this looks like a binary file" data prepare --tokenizer tok --input binary.bin --out d1
[ ! -e d1/dataset.json ] || fail "data prepare wrote a dataset from a binary file"
expect_error "latin1.txt: line 1 (byte 3) is not valid UTF-8" data prepare --tokenizer tok --input latin1.txt --out d2
expect_error "nul.txt: line 2" data prepare --tokenizer tok --input nul.txt --out d3
expect_error "empty.jsonl: the file is empty" data prepare --tokenizer tok --input empty.jsonl --out d4
expect_error "is a character device" data prepare --tokenizer tok --input /dev/urandom --out d5
expect_error "binary.bin: line .* this looks like a binary file" tokenizer train --input binary.bin --vocab-size 300 --out t1
expect_error "is a character device" tokenizer train --input /dev/zero --vocab-size 300 --out t2
"$bin" data prepare --tokenizer tok --input <(cat text.txt) --out d6 >/dev/null || fail "data prepare from a pipe"

# Examples longer than the context (tiny_gqa: 256 tokens) are skipped with their line numbers.
python3 - <<'PY'
import json
long = " ".join(["cat"] * 400)
lines = [{"header": {"name": "skips"}},
         {"context": "The cat", "choices": ["sat", "ran"], "gold": 0},
         {"context": long, "choices": ["sat", "ran"], "gold": 1},
         {"context": "A dog", "choices": ["ran", "sat"], "gold": 0},
         {"prompt": long, "reference": "x"}]
open("mixed.jsonl", "w").write("".join(json.dumps(l) + "\n" for l in lines))
open("all_long.jsonl", "w").write("".join(json.dumps(l) + "\n" for l in [lines[0], lines[2], lines[4]]))
PY
"$bin" eval --model "$model" --tokenizer tok --task mixed.jsonl --out per.jsonl --quiet >res.json 2>err ||
  fail "eval with some over-long examples failed: $(cat err)"
grep -q "skipped mixed.jsonl: line 3: context and choice 0 take .* tokens, more than the model's context of 256" err ||
  fail "no line-numbered skip for line 3: $(cat err)"
grep -q "skipped mixed.jsonl: line 5: the prompt (.* tokens) leaves no room for one block of 32 tokens in the model's context" err ||
  fail "no line-numbered skip for line 5: $(cat err)"
python3 -c "
import json; r = json.load(open('res.json')); assert r['n'] == 2 and r['skipped_too_long'] == 2, r
lines = [json.loads(l) for l in open('per.jsonl')]; assert [l['line'] for l in lines] == [2, 4], lines
" || fail "summary or per-example file: $(cat res.json)"
echo "old results" > per_all.jsonl
expect_error "nothing could be evaluated (2 of 2 examples do not fit" \
  eval --model "$model" --tokenizer tok --task all_long.jsonl --out per_all.jsonl --quiet
[ "$(cat per_all.jsonl)" = "old results" ] || fail "a failed eval replaced or truncated its --out file"
ls per_all.jsonl.tmp.* >/dev/null 2>&1 && fail "a failed eval left a temporary file"
echo "bad_text_inputs: ok"
