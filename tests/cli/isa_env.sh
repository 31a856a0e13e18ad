#!/usr/bin/env bash
# ILLADA_ISA from the command line's point of view: every level name runs and gives the ids of
# the uncapped run (the tiny model's greedy answer does not depend on summation order), and a
# name not in the list stops the program with exit status 2 and a message naming the variable
# and the accepted names, not a crash.
# Usage: isa_env.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
model=$2/tests/fixtures/tiny_gqa
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive
gen=(generate --model "$model" --prompt-ids 1,2,3,4 --gen-length 16 --block-length 8 --steps 8
     --format json)
ids() { python3 -c "import json,sys; print(json.load(sys.stdin)['ids'])"; }
want=$(env -u ILLADA_ISA "$bin" "${gen[@]}" | ids)
for level in scalar avx2 avx512 avx512_bf16 amx; do
  got=$(ILLADA_ISA=$level "$bin" "${gen[@]}" | ids)
  [ "$got" = "$want" ] || fail "ILLADA_ISA=$level: ids $got, uncapped $want"
done
rc=0
ILLADA_ISA=avx9 "$bin" "${gen[@]}" > /dev/null 2> "$tmp/err" || rc=$?
[ "$rc" = 2 ] || fail "ILLADA_ISA=avx9: exit status $rc, expected 2 ($(cat "$tmp/err"))"
grep -q "ILLADA_ISA" "$tmp/err" && grep -q "avx512_bf16" "$tmp/err" ||
  fail "ILLADA_ISA=avx9: message does not name the variable and the levels: $(cat "$tmp/err")"
echo "isa_env: OK (5 levels give the same ids; a bad name exits 2)"
