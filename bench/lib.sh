# Shell helpers of the bench scripts (source it). BENCH_ERR: where a timed command's stderr goes.

# secs CMD...: wall seconds of a command that must succeed (its stderr in $BENCH_ERR, whose last
# lines are shown and the script stopped when it fails).
secs() {
  local t0 t1
  t0=$(date +%s.%N)
  "$@" > /dev/null 2> "$BENCH_ERR" || { echo "failed: $*: $(tail -3 "$BENCH_ERR")" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc -l
}
