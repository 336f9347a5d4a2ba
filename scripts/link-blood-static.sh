#!/bin/sh
# Links the self-contained static Blood runtime (CMakeLists.txt, "the Blood
# runtime" block):
#
#   link-blood-static.sh OUT.a SYMBOLS LD OBJCOPY NM AR OBJECT... -- ARCHIVE...
#
# 1. ld -r: one relocatable object from the OBJECTs (the Blood layer and
#    weft) and the members of the ARCHIVEs (liburing.a, libstdc++.a) they
#    need; --force-group-allocation dissolves COMDAT groups, so that no
#    group of ours can be merged with (and discarded for) a program's copy.
# 2. objcopy: every defined global symbol becomes local except the ones
#    listed in SYMBOLS (one per line). libstdc++'s STB_GNU_UNIQUE symbols
#    cannot be localized directly: they are made weak first.
# 3. A check that exactly the SYMBOLS are left defined and global, then ar.
set -eu
out=$1 symbols=$2 ld=$3 objcopy=$4 nm=$5 ar=$6
shift 6
objects=
while [ $# -gt 0 ] && [ "$1" != -- ]; do
  objects="$objects $1"
  shift
done
[ $# -gt 0 ] && shift
archives="$*"

dir=$(dirname "$out")
tmp=$dir/link-tmp
rm -rf "$tmp"
mkdir -p "$tmp"
# shellcheck disable=SC2086 # word splitting of the lists is intended
"$ld" -r --force-group-allocation -o "$tmp/all.o" $objects --start-group $archives --end-group
"$nm" --defined-only "$tmp/all.o" | awk '$2 == "u" { print $3 }' >"$tmp/unique.txt"
"$objcopy" --weaken-symbols="$tmp/unique.txt" "$tmp/all.o" "$tmp/weak.o"
"$objcopy" --keep-global-symbols="$symbols" "$tmp/weak.o" "$tmp/blood_runtime.o"

"$nm" -g --defined-only "$tmp/blood_runtime.o" | awk '{ print $3 }' | sort >"$tmp/exported.txt"
sort "$symbols" | grep -v '^$' >"$tmp/wanted.txt"
if ! cmp -s "$tmp/exported.txt" "$tmp/wanted.txt"; then
  echo "link-blood-static.sh: the archive would export other symbols than $symbols:" >&2
  diff "$tmp/wanted.txt" "$tmp/exported.txt" >&2 || true
  exit 1
fi
rm -f "$out"
"$ar" qcs "$out" "$tmp/blood_runtime.o"
rm -rf "$tmp"
