#!/usr/bin/env bash
# Threads: --threads N on every command that computes, results that do not depend on it
# (logits bit for bit in f32 and bf16, generated ids, scores, training losses, for 1, 2 and 3
# threads, 3 being more threads than this machine may have), and the OpenMP wait policy that
# the program picks before the runtime starts unless the user chose one
# (cli/openmp_env.h; docs/benchmarks.md "Threading defaults").
# Usage: threads.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
tmp=$(mktemp -d)
hogs=()
trap 'kill "${hogs[@]}" 2>/dev/null || true; rm -rf "$tmp"' EXIT
fail() { echo "threads: $*" >&2; exit 1; }
cd "$tmp"
unset OMP_NUM_THREADS OMP_WAIT_POLICY GOMP_SPINCOUNT

# Every command that computes takes --threads.
for cmd in generate chat score eval logits info init train "data prepare" "tokenizer train" demo; do
  # shellcheck disable=SC2086
  help=$("$bin" $cmd --help)  # not piped into grep -q: an early exit would be a SIGPIPE under pipefail
  grep -q -- "--threads INT" <<<"$help" || fail "$cmd has no --threads"
done

# A model with matrices large enough for oneDNN to split its work across threads.
cat > cfg.json <<'JSON'
{"d_model": 256, "n_layers": 3, "n_heads": 4, "n_kv_heads": 2, "mlp_hidden_size": 704, "vocab_size": 2048,
 "max_sequence_length": 512, "weight_tying": false, "mask_token_id": 2047, "eos_token_id": 2046}
JSON
"$bin" init --config cfg.json --out m --seed 4 >/dev/null
ids=$(python3 -c "print(','.join(str((i * 37 + 11) % 2000) for i in range(150)))")
for dtype in f32 bf16; do
  for t in 1 2 3; do
    "$bin" logits --model m --prompt-ids "$ids" --dtype $dtype --threads $t --out "l_${dtype}_$t.f32" >/dev/null
  done
  cmp -s "l_${dtype}_1.f32" "l_${dtype}_2.f32" || fail "$dtype logits differ between 1 and 2 threads"
  cmp -s "l_${dtype}_1.f32" "l_${dtype}_3.f32" || fail "$dtype logits differ between 1 and 3 threads"
done
OMP_NUM_THREADS=1 "$bin" logits --model m --prompt-ids "$ids" --dtype bf16 --out env1.f32 >/dev/null
cmp -s env1.f32 l_bf16_2.f32 || fail "OMP_NUM_THREADS=1 differs"

short=${ids%%,*},7,9,13
for t in 1 2 3; do
  "$bin" generate --model m --prompt-ids "$short" --gen-length 64 --steps 32 --temperature 0.7 --seed 3 --threads $t \
    --format json | python3 -c "import json,sys; print(json.load(sys.stdin)['ids'])" > "gen_$t.txt"
  "$bin" generate --model m --prompt-ids "$short" --gen-length 64 --threshold 0.5 --cache dual --threads $t \
    --format json | python3 -c "import json,sys; print(json.load(sys.stdin)['ids'])" > "fast_$t.txt"
  "$bin" score --model m --prompt-ids "$short" --choice-ids "5,6,7;8;9,10" --method likelihood --mc-num 16 \
    --threads $t --format json > "ll_$t.json"
  "$bin" score --model m --prompt-ids "$short" --choice-ids "5,6,7;8;9,10" --threads $t --format json > "conf_$t.json"
done
for f in gen fast ll conf; do
  ext=txt; [ "$f" = ll ] || [ "$f" = conf ] && ext=json
  cmp -s "${f}_1.$ext" "${f}_2.$ext" && cmp -s "${f}_1.$ext" "${f}_3.$ext" ||
    fail "$f results depend on the thread count: $(cat "${f}_1.$ext" "${f}_2.$ext" "${f}_3.$ext")"
done

# Training: the same losses bit for bit.
source "$src/tests/cli/lib/tiny_corpus.sh"
tiny_corpus "$bin" 5 120
for t in 1 2 3; do
  "$bin" train --model-config model.json --tokenizer tok --data data --seq-len 32 --batch-size 4 --steps 5 \
    --eval-every 5 --quiet --threads $t --out "run_$t" >/dev/null
  python3 -c "
import json
print([(l.get('loss'), l.get('eval_loss'), l.get('grad_norm')) for l in map(json.loads, open('run_$t/metrics.jsonl'))])
" > "loss_$t.txt"
done
cmp -s loss_1.txt loss_2.txt && cmp -s loss_1.txt loss_3.txt || fail "training losses depend on the thread count"

# The wait policy: illada's choice (a short spin when nothing else runs, passive when other
# processes compete) unless the user chose. With a busy loop on every core it must be passive.
shows() { grep -q "$1" disp || fail "expected $1 in effect: $(grep -E 'WAIT_POLICY|SPINCOUNT' disp)"; }
OMP_DISPLAY_ENV=verbose "$bin" info --model m >/dev/null 2>disp
grep -qE "GOMP_SPINCOUNT = '(0|10000)'" disp || fail "no illada default in effect: $(grep SPINCOUNT disp)"
for _ in $(seq 1 "$(nproc)"); do sh -c 'while :; do :; done' & hogs+=($!); done
sleep 0.3
OMP_DISPLAY_ENV=verbose "$bin" info --model m >/dev/null 2>disp || true
kill "${hogs[@]}"
hogs=()
shows "GOMP_SPINCOUNT = '0'"
GOMP_SPINCOUNT=77 OMP_DISPLAY_ENV=verbose "$bin" info --model m >/dev/null 2>disp
shows "GOMP_SPINCOUNT = '77'"
grep -qE "GOMP_SPINCOUNT = '(0|10000)'" disp && fail "the user's GOMP_SPINCOUNT was overridden"
OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=verbose "$bin" info --model m >/dev/null 2>disp
shows "OMP_WAIT_POLICY = 'ACTIVE'"
grep -qE "GOMP_SPINCOUNT = '(0|10000)'" disp && fail "the user's OMP_WAIT_POLICY was overridden"
echo "threads: ok"
