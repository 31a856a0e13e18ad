#!/usr/bin/env bash
# The binary built here runs on other x86-64 CPUs and computes the same answers: illada
# generate and logits under QEMU's user-mode emulator, as an AVX2 CPU without AVX-512 (`-cpu
# max`: QEMU emulates AVX2 but no AVX-512) and as a plain x86-64 CPU (`-cpu qemu64`), against
# the same commands run natively. On the AVX2 CPU oneDNN has no bf16 products, so the default
# bf16 generation also exercises their fp32 fallback (src/kernels/onednn.h).
# Usage: portable_qemu.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
src=$2
model=$src/tests/fixtures/tiny_gqa
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v qemu-x86_64 >/dev/null ||
  fail "qemu-x86_64 missing: scripts/install_deps.sh installs it (Debian package qemu-user)"
# One passive thread: faster under emulation, and a set OMP_WAIT_POLICY keeps the CLI from
# re-executing itself, which would leave the emulator and run natively.
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive

# The emulated CPUs lack what they should: a program using AVX-512 dies on `max`, one using
# AVX2 dies on `qemu64` (so a pass below means the binary avoided those instructions).
printf '#include <immintrin.h>\nint main(int c, char**) { __m512 v = _mm512_set1_ps((float)c); return (int)_mm512_reduce_add_ps(_mm512_add_ps(v, v)) == 12345; }\n' > "$tmp/avx512.c"
printf '#include <immintrin.h>\nint main(int c, char**) { __m256 v = _mm256_set1_ps((float)c); v = _mm256_fmadd_ps(v, v, v); float f[8]; _mm256_storeu_ps(f, v); return f[3] == 12345.0f; }\n' > "$tmp/avx2.c"
cc -O1 -mavx512f -o "$tmp/avx512" "$tmp/avx512.c"
cc -O1 -mavx2 -mfma -o "$tmp/avx2" "$tmp/avx2.c"
runs() { (exec qemu-x86_64 -cpu "$1" "$2") >/dev/null 2>&1; }  # silent about the SIGILL
runs max "$tmp/avx2" || fail "qemu -cpu max does not run AVX2 code"
if runs max "$tmp/avx512"; then fail "qemu -cpu max ran AVX-512 code"; fi
if runs qemu64 "$tmp/avx2"; then fail "qemu -cpu qemu64 ran AVX2 code"; fi

gen=(generate --model "$model" --prompt-ids 1,2,3,4 --gen-length 16 --block-length 8 --steps 8
     --format json)
ids() { python3 -c "import json,sys; print(json.load(sys.stdin)['ids'])"; }
# Largest difference between two float32 logit files, relative to the largest logit.
rel_diff() {
  python3 -c "
import array, sys
a, b = array.array('f'), array.array('f')
a.frombytes(open(sys.argv[1], 'rb').read()); b.frombytes(open(sys.argv[2], 'rb').read())
assert len(a) == len(b) and len(a) > 0, (len(a), len(b))
print(max(abs(x - y) for x, y in zip(a, b)) / max(abs(x) for x in a))" "$1" "$2"
}

want_bf16=$("$bin" "${gen[@]}" | ids)
want_f32=$("$bin" "${gen[@]}" --dtype f32 | ids)
"$bin" logits --model "$model" --prompt-ids 1,2,3,4,5,6 --dtype f32 --out "$tmp/native.f32" >/dev/null
"$bin" logits --model "$model" --prompt-ids 1,2,3,4,5,6 --dtype bf16 --out "$tmp/native.bf16" >/dev/null
for cpu in max qemu64; do
  got=$(qemu-x86_64 -cpu "$cpu" "$bin" "${gen[@]}" | ids) || fail "generate (bf16) on -cpu $cpu"
  [ "$got" = "$want_bf16" ] || fail "bf16 ids on -cpu $cpu: $got, natively $want_bf16"
  got=$(qemu-x86_64 -cpu "$cpu" "$bin" "${gen[@]}" --dtype f32 | ids) || fail "generate (f32) on -cpu $cpu"
  [ "$got" = "$want_f32" ] || fail "f32 ids on -cpu $cpu: $got, natively $want_f32"
  for dt in f32 bf16; do
    qemu-x86_64 -cpu "$cpu" "$bin" logits --model "$model" --prompt-ids 1,2,3,4,5,6 --dtype "$dt" \
      --out "$tmp/$cpu.$dt" >/dev/null || fail "logits ($dt) on -cpu $cpu"
    d=$(rel_diff "$tmp/native.$dt" "$tmp/$cpu.$dt")
    # fp32: summation order only; bf16: a rounding flipped by the order moves a logit by up to
    # a bf16 step of its inputs.
    limit=$([ "$dt" = f32 ] && echo 1e-5 || echo 2e-2)
    python3 -c "import sys; sys.exit(0 if float('$d') <= $limit else 1)" ||
      fail "$dt logits on -cpu $cpu differ from native by $d of the largest (limit $limit)"
    echo "-cpu $cpu: $dt logits within $d of native (relative), ids equal"
  done
done
echo "portable_qemu: OK"
