#!/usr/bin/env bash
# illada as a subproject: a small outer project includes the source tree with
# add_subdirectory(), gets its targets (and no tests or benchmarks of its own), and builds and
# runs a program against one of its libraries. Paths inside illada's CMakeLists.txt must be
# relative to illada's own tree (PROJECT_SOURCE_DIR), not the outer project's.
# Usage: subproject.sh ILLADA_BIN SOURCE_DIR
set -euo pipefail
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$tmp/outer"
cat > "$tmp/outer/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.25)
project(outer LANGUAGES CXX)
add_subdirectory("$src" illada)
foreach(t illada illada_util illada_kernels illada_model illada_sample illada_train)
  if(NOT TARGET \${t})
    message(FATAL_ERROR "illada as a subproject did not define the target \${t}")
  endif()
endforeach()
foreach(t kernels_tests illada_bench)
  if(TARGET \${t})
    message(FATAL_ERROR "illada as a subproject built its own \${t}")
  endif()
endforeach()
add_executable(outer main.cc)
target_link_libraries(outer PRIVATE illada_util)
CMAKE
cat > "$tmp/outer/main.cc" <<'CC'
#include <cstdio>
#include "util/isa.h"
int main() {
  std::printf("outer: kernels at %s\n", illada::isa_name(illada::isa_level()));
  return 0;
}
CC
cmake -S "$tmp/outer" -B "$tmp/build" -DCMAKE_BUILD_TYPE=Debug >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log" >&2; fail "configuring the outer project"; }
cmake --build "$tmp/build" --target outer -j2 >"$tmp/build.log" 2>&1 ||
  { tail -30 "$tmp/build.log" >&2; fail "building the outer project"; }
out=$("$tmp/build/outer")
echo "$out" | grep -q "^outer: kernels at " || fail "unexpected output: $out"
echo "subproject: OK ($out)"
