#!/usr/bin/env bash
# weft_test_install: installs a build into a temporary prefix and builds
# consumers from outside the tree, three ways, then runs them:
#   1. CMake: find_package(weft CONFIG) -> weft::weft_shared (C),
#      weft::weft (C++), weft::blood_runtime and weft::blood_runtime_static
#   2. pkg-config --cflags --libs weft (C)
#   3. the Blood seed's section 11.4 Linux lines, static and dynamic, with
#      and without -luring; section 11.8: nm -u prog | grep blood_ is empty
#      for the static link
# It also checks the installed layout: sonames and symlinks, and that the
# shared libraries export exactly weft.h's functions / the eleven Blood
# symbols.
#
#   run.sh BUILD_DIR CC CXX CMAKE SOURCE_DIR
set -euo pipefail
build=$1 cc=$2 cxx=$3 cmake=$4 src=$5
work=$(mktemp -d /tmp/weft-install-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
lib=$prefix/lib

fail() {
  echo "weft_test_install: FAILED: $*" >&2
  exit 1
}
step() { echo "== $*"; }

step "cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log"

step "layout, sonames, exported symbols"
for f in include/weft/weft.h include/weft/weft.hpp include/weft/detail/task.hpp \
  include/blood_runtime.h lib/libweft.a lib/libweft.so lib/libweft.so.0 lib/libblood_runtime.so \
  lib/libblood_runtime.so.0 lib/blood-static/libblood_runtime.a lib/cmake/weft/weftConfig.cmake \
  lib/cmake/weft/weftConfigVersion.cmake lib/pkgconfig/weft.pc lib/pkgconfig/blood_runtime.pc; do
  [ -e "$prefix/$f" ] || fail "$f is not installed"
done
[ "$(readlink "$lib/libweft.so")" = libweft.so.0 ] || fail "libweft.so -> libweft.so.0"
# Outputs are captured before grep -q looks at them: grep -q exits at the
# first match, and under pipefail the writer's SIGPIPE would fail the test.
dynamic=$(readelf -d "$lib/libweft.so.0")
grep -q 'SONAME.*\[libweft\.so\.0\]' <<<"$dynamic" || fail "soname libweft.so.0"
dynamic=$(readelf -d "$lib/libblood_runtime.so.0")
grep -q 'RUNPATH.*\$ORIGIN' <<<"$dynamic" ||
  fail "libblood_runtime.so finds libweft.so.0 next to it (RUNPATH \$ORIGIN)"
# The functions weft.h declares, and the ones libweft.so exports (WEFT_1).
grep -oE '^[a-z].*[ *](weft_[a-z_0-9]+)\(' "$prefix/include/weft/weft.h" |
  grep -oE 'weft_[a-z_0-9]+\($' | tr -d '(' | sort -u >"$work/declared.txt"
nm -D --defined-only "$lib/libweft.so.0" | awk '$2 == "T" { print $3 }' >"$work/exported-raw.txt"
grep -v '@@WEFT_1$' "$work/exported-raw.txt" && fail "libweft.so exports symbols outside WEFT_1"
sed 's/@@WEFT_1$//' "$work/exported-raw.txt" | sort -u >"$work/exported.txt"
diff -u "$work/declared.txt" "$work/exported.txt" ||
  fail "libweft.so must export exactly the functions of weft.h"
echo "libweft.so exports the $(wc -l <"$work/exported.txt") functions of weft.h, version WEFT_1"
blood_symbols="blood_channel_create blood_channel_recv blood_channel_send blood_fiber_await blood_fiber_spawn blood_fiber_yield blood_io_reactor_init blood_runtime_init blood_runtime_shutdown blood_scheduler_init blood_scheduler_shutdown"
got=$(nm -D --defined-only "$lib/libblood_runtime.so.0" | awk '$2 == "T" { sub(/@@.*/, "", $3); print $3 }' | sort | tr '\n' ' ')
[ "$got" = "$blood_symbols " ] || fail "libblood_runtime.so exports [$got]"
got=$(nm -g --defined-only "$lib/blood-static/libblood_runtime.a" | awk 'NF == 3 { print $3 }' | sort | tr '\n' ' ')
[ "$got" = "$blood_symbols " ] || fail "libblood_runtime.a defines [$got]"

step "1. CMake find_package(weft CONFIG)"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
"$cmake" -S "$src/tests/install/consumer" -B "$work/cmake" "${generator[@]}" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_BUILD_TYPE=Release -DBLOOD_EXAMPLE="$src/examples/blood/main.c" >"$work/cmake.log" ||
  { cat "$work/cmake.log"; fail "configuring the CMake consumer"; }
"$cmake" --build "$work/cmake" >"$work/cmake-build.log" ||
  { cat "$work/cmake-build.log"; fail "building the CMake consumer"; }
"$work/cmake/consumer_c"
"$work/cmake/consumer_cpp"
"$work/cmake/blood_shared" 500
"$work/cmake/blood_static" 500

step "2. pkg-config --cflags --libs weft"
export PKG_CONFIG_PATH=$lib/pkgconfig
# shellcheck disable=SC2046 # the flags are meant to split
"$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror "$src/tests/install/consumer/consumer.c" \
  $(pkg-config --cflags --libs weft) -Wl,-rpath,"$lib" -o "$work/pkgconfig_c"
"$work/pkgconfig_c"
# shellcheck disable=SC2046
"$cc" -std=c11 "$src/examples/blood/main.c" $(pkg-config --cflags --libs blood_runtime) \
  -Wl,-rpath,"$lib" -o "$work/pkgconfig_blood"
"$work/pkgconfig_blood" 500

step "3. the Blood seed's link lines (section 11.4), with $cc"
"$cc" -c "$src/examples/blood/main.c" -I"$prefix/include" -o "$work/program.o"
cd "$work"
"$cc" program.o -L"$lib/blood-static" -lblood_runtime -lpthread -ldl -lm -o program_static
"$cc" program.o -L"$lib" -Wl,-rpath,"$lib" -lblood_runtime -lpthread -ldl -lm -o program_dynamic
"$cc" program.o -L"$lib/blood-static" -lblood_runtime -lpthread -ldl -lm -luring -o program_static_uring
"$cc" program.o -L"$lib" -Wl,-rpath,"$lib" -lblood_runtime -lpthread -ldl -lm -luring -o program_dynamic_uring
for p in program_static program_dynamic program_static_uring program_dynamic_uring; do
  ./$p 1000 >"$p.out" || { cat "$p.out"; fail "$p"; }
  echo "$p: $(cat "$p.out")"
done
undefined=$(nm -u program_static | grep blood_ || true)
[ -z "$undefined" ] || fail "nm -u program_static | grep blood_ printed: $undefined"
echo "nm -u program_static | grep blood_: nothing (section 11.8)"
deps=$(ldd program_static)
if grep -E 'libweft|libblood_runtime|libstdc\+\+|liburing' <<<"$deps"; then
  fail "the static program depends on the libraries above"
fi
deps=$(ldd program_dynamic)
grep -q "$lib/libblood_runtime.so.0" <<<"$deps" || fail "program_dynamic uses $lib/libblood_runtime.so.0"
grep -q "$lib/libweft.so.0" <<<"$deps" || fail "program_dynamic uses $lib/libweft.so.0 (through \$ORIGIN)"
echo "weft_test_install: all consumers built and ran"
