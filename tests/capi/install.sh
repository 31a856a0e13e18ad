#!/usr/bin/env bash
# Installs the build into a fresh prefix and checks the tree: every file where the docs say,
# the SONAME link, only illada_* symbols exported, relocatable package files.
# Usage: install.sh BUILD_DIR PREFIX
set -euo pipefail
build=$(realpath "$1")
prefix=$(realpath -m "$2")
fail() { echo "FAIL: $*" >&2; exit 1; }
rm -rf "$prefix"
cmake --install "$build" --prefix "$prefix" > /dev/null
for f in bin/illada lib/libillada.so include/illada/illada.h lib/cmake/illada/illadaConfig.cmake \
         lib/cmake/illada/illadaConfigVersion.cmake lib/cmake/illada/illadaTargets.cmake \
         lib/pkgconfig/illada.pc python/illada/__init__.py python/illada/_lib.py python/illada/model.py; do
  [ -e "$prefix/$f" ] || fail "missing $prefix/$f"
done
[ -x "$prefix/bin/illada" ] || fail "bin/illada is not executable"
soname=$(readelf -d "$prefix/lib/libillada.so" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
abi=$(sed -n 's/^#define ILLADA_ABI_VERSION \([0-9]*\)$/\1/p' "$prefix/include/illada/illada.h")
[ "$soname" = "libillada.so.$abi" ] || fail "SONAME '$soname', expected libillada.so.$abi"
[ -L "$prefix/lib/libillada.so" ] && [ -e "$prefix/lib/$soname" ] || fail "lib/libillada.so -> $soname links missing"
# The library's interface is the header's functions and nothing else.
others=$(nm -D --defined-only "$prefix/lib/libillada.so" | awk '{print $3}' | grep -v '^illada_' || true)
[ -z "$others" ] || fail "libillada.so exports more than illada_*: $(echo "$others" | head -5 | tr '\n' ' ')"
declared=$(grep -o '^ILLADA_API [^(]*(' "$prefix/include/illada/illada.h" | sed 's/.*[ *]\(illada_[a-z_0-9]*\)($/\1/' | sort)
exported=$(nm -D --defined-only "$prefix/lib/libillada.so" | awk '{print $3}' | sort)
[ "$declared" = "$exported" ] || fail "exported symbols differ from the header: $(diff <(echo "$declared") <(echo "$exported") | tr '\n' ' ')"
grep -q "$build\|$(cd "$(dirname "$0")/../.." && pwd)" "$prefix/lib/pkgconfig/illada.pc" \
  "$prefix"/lib/cmake/illada/*.cmake && fail "installed package files name the build or source tree"
# The library needs nothing from the build tree at run time.
ldd "$prefix/lib/libillada.so" | grep -q "not found" && fail "unresolved libraries: $(ldd "$prefix/lib/libillada.so")"
"$prefix/bin/illada" --version > /dev/null
echo "install: $prefix holds the program, library ($soname), header, CMake and pkg-config packages, Python package"
