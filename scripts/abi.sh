#!/usr/bin/env bash
# The ABI baselines of weft's shared libraries, with libabigail (Debian's
# abigail-tools: abidw, abidiff).
#
#   scripts/abi.sh check  LIBWEFT.so LIBBLOOD_RUNTIME.so
#       Compares each library with its baseline in abi/ (libweft.abi,
#       libblood_runtime.abi). Fails on any change but added functions (a
#       function removed or with another signature, a struct of weft.h
#       with another layout, ...) and on any abidiff error; reports added
#       functions and passes, asking for the baseline to be updated.
#   scripts/abi.sh update LIBWEFT.so LIBBLOOD_RUNTIME.so
#       Rewrites the baselines from these libraries: after a compatible
#       addition, or with a new major version (soname).
#
# libweft.so is reduced to what C programs see (abi/weft.suppr): weft.h's
# functions and types, its handles opaque.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${1:-}
[ $# -eq 3 ] && { [ "$mode" = check ] || [ "$mode" = update ]; } ||
  { echo "usage: $0 check|update LIBWEFT.so LIBBLOOD_RUNTIME.so" >&2; exit 2; }
command -v abidw >/dev/null && command -v abidiff >/dev/null ||
  { echo "abi.sh: abidw/abidiff not found (Debian: abigail-tools; scripts/bootstrap.sh installs it)" >&2; exit 2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# abidw of library $1 with suppressions $2 (or none) into $3.
dump() {
  local supp=()
  [ -n "$2" ] && supp=(--suppressions "$2")
  abidw --no-corpus-path --no-comp-dir-path --no-show-locs "${supp[@]}" --out-file "$3" "$1"
}

status=0
for pair in "libweft:$2:$here/abi/weft.suppr" "libblood_runtime:$3:"; do
  IFS=: read -r name lib supp <<<"$pair"
  baseline=$here/abi/$name.abi
  if [ "$mode" = update ]; then
    dump "$lib" "$supp" "$baseline"
    echo "abi.sh: wrote $baseline"
    continue
  fi
  dump "$lib" "$supp" "$tmp/$name.abi"
  # abidiff's exit status: bit 1 error, 2 usage, 4 an ABI change, 8 a change
  # it knows to be incompatible (a function removed...). A struct layout
  # change is only "4", so a second run leaving out the added functions
  # tells additions (compatible) from everything else (not).
  rc=0 rc_not_added=0
  abidiff --no-show-locs "$baseline" "$tmp/$name.abi" >"$tmp/$name.diff" || rc=$?
  abidiff --no-show-locs --no-added-syms "$baseline" "$tmp/$name.abi" >"$tmp/$name.changed" ||
    rc_not_added=$?
  if (((rc | rc_not_added) & 3)); then
    echo "abi.sh: $name: abidiff failed (exit $rc):" >&2
    cat "$tmp/$name.diff" >&2
    status=1
  elif ((rc & 8 || rc_not_added & 4)); then
    echo "abi.sh: $name: INCOMPATIBLE change to the C ABI (abidiff exit $rc):" >&2
    cat "$tmp/$name.changed" >&2
    status=1
  elif ((rc & 4)); then
    echo "abi.sh: $name: compatible ABI change; record it with scripts/abi.sh update:"
    cat "$tmp/$name.diff"
  else
    echo "abi.sh: $name: ABI unchanged"
  fi
done
exit $status
