#!/usr/bin/env bash
# The illada binary runs on any x86-64 CPU: outside the copies of hot loops compiled for AVX2
# and AVX-512 (namespaces illada::...::avx2 and ::avx512, the kernels' ::simd512 helpers, and
# the quantised products' ::avx_vnni and ::amx copies,
# which run only where isa_level() allows them: src/util/isa_dispatch.h) no function uses an
# instruction beyond the x86-64 baseline (SSE2); and those copies are in the binary.
# Usage: portable_binary.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
bin=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v objdump >/dev/null || fail "objdump missing (Debian package binutils)"

# Functions (demangled names) holding an instruction beyond x86-64: VEX/EVEX encodings (AVX,
# AVX2, FMA, AVX-512: mnemonics starting with v, ymm/zmm or mask registers), SSE3-4.2, and the
# bit-manipulation extensions GCC emits for newer -march levels. (Not tzcnt: GCC writes `rep
# bsf` for __builtin_ctz at every level, which objdump shows as tzcnt and older CPUs run as bsf.)
wide_functions() {  # wide_functions OBJECT
  objdump -d --no-show-raw-insn -C "$1" | awk '
    BEGIN {
      n = split("addsubps addsubpd haddps haddpd hsubps hsubpd movddup movshdup movsldup lddqu " \
                "pshufb palignr pabsb pabsw pabsd phaddw phaddd phsubw phsubd pmaddubsw pmulhrsw " \
                "psignb psignw psignd ptest pblendw pblendvb blendps blendpd blendvps blendvpd " \
                "roundps roundpd roundss roundsd pminsb pminsd pminuw pminud pmaxsb pmaxsd pmaxuw " \
                "pmaxud pmulld pmuldq pmovsxbw pmovsxbd pmovsxwd pmovsxdq pmovzxbw pmovzxbd " \
                "pmovzxwd pmovzxdq pextrb pextrd pextrq pinsrb pinsrd pinsrq extractps insertps " \
                "packusdw pcmpeqq pcmpgtq dpps dppd mpsadbw phminposuw pcmpestri pcmpestrm " \
                "pcmpistri pcmpistrm crc32 popcnt lzcnt andn bextr blsi blsmsk blsr bzhi " \
                "mulx pdep pext rorx sarx shlx shrx movbe", list, " ")
      for (i = 1; i <= n; i++) newer[list[i]] = 1
    }
    /^[0-9a-f]+ <.*>:$/ { name = substr($0, index($0, "<") + 1); sub(/>:$/, "", name); next }
    /^ +[0-9a-f]+:\t/ {
      split($0, f, "\t"); split(f[2], w, " "); op = w[1]
      sub(/^(rep|repz|repnz|lock|notrack|bnd|data16|cs|ds) /, "", f[2]); split(f[2], w, " ")
      op = w[1]; sub(/[lqwb]$/, "", op)
      if (op ~ /^v/ || f[2] ~ /%[yz]mm|%k[0-7]/ || (w[1] in newer) || (op in newer)) {
        if (!(name in seen)) { seen[name] = 1; print name }
      }
    }'
}

# The detector itself flags AVX2 code and passes baseline code (so that a pass below means
# something).
printf 'void f(float* x, int n) { for (int i = 0; i < n; ++i) x[i] = x[i] * 3.0f + 1.0f; }\n' > "$tmp/f.c"
cc -O3 -mavx2 -mfma -c "$tmp/f.c" -o "$tmp/avx2.o"
cc -O3 -c "$tmp/f.c" -o "$tmp/base.o"
[ -n "$(wide_functions "$tmp/avx2.o")" ] || fail "the detector missed AVX2 code"
[ -z "$(wide_functions "$tmp/base.o")" ] || fail "the detector flagged baseline code: $(wide_functions "$tmp/base.o")"

wide_functions "$bin" > "$tmp/wide"
kernel_copy='^([^(]* )?illada::([a-z0-9_]+::)*(avx2|avx_vnni|avx512|simd512|amx)::'  # after a return type
grep -Ev "$kernel_copy" "$tmp/wide" > "$tmp/outside" || true
if [ -s "$tmp/outside" ]; then
  echo "functions outside the per-ISA kernel copies that need more than x86-64:" >&2
  head -20 "$tmp/outside" >&2
  fail "$(wc -l < "$tmp/outside") function(s) would stop the binary on an older x86-64 CPU (built with -march=native or ILLADA_NATIVE=ON?)"
fi
avx2=$(grep -Ec '^([^(]* )?illada::([a-z0-9_]+::)*avx2::' "$tmp/wide" || true)
avx512=$(grep -Ec '^([^(]* )?illada::([a-z0-9_]+::)*avx512::' "$tmp/wide" || true)
[ "$avx2" -gt 20 ] || fail "only $avx2 functions of AVX2 copies in the binary"
[ "$avx512" -gt 20 ] || fail "only $avx512 functions of AVX-512 copies in the binary"
echo "portable_binary: OK ($avx2 AVX2 and $avx512 AVX-512 functions in the per-ISA copies; nothing else beyond x86-64)"
