#!/bin/bash
# tools/gdb/weft.py in gdb batch mode (docs/observability.md, "gdb"): on a
# live process (attach) and on its core (gcore), `info weft-fibers` lists
# the parked fibers with their wait reasons and `weft-bt ID` prints the
# backtrace of the fiber parked in weft_gdb_test::wait_in_recv, naming that
# function. Usage: gdb_test.sh <gdb_target binary> <tools/gdb/weft.py>.
# Exits 77 (ctest: skipped) when gdb is missing.
#
# Two runs of the target: with guard pages (the default), attached live; and
# with WEFT_GUARD_PAGES=0, attached live and from a gcore core. gcore cannot
# read a stack whose guard page is a MADV_GUARD_INSTALL marker (Linux >=
# 6.13): it writes the whole mapping as zeros (docs/observability.md).
set -u
target=$1
script=$2
if ! command -v gdb > /dev/null || ! command -v gcore > /dev/null; then
  echo "SKIPPED: gdb is not installed (scripts/bootstrap.sh installs it)"
  exit 77
fi
dir=$(mktemp -d)
pid=
trap 'exec 3>&- 2>/dev/null; [[ -n $pid ]] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
fail=0

check() {  # check <what> <output file> <fiber id>
  local what=$1 out=$2 id=$3
  for want in "fiber $id \"receiver\" parked: chan_recv 0x" '"event-waiter" parked: event 0x' \
              "weft_gdb_test::wait_in_recv" "2 fibers"; do
    if ! grep -qF "$want" "$out"; then
      echo "FAIL ($what): no '$want' in:"; cat "$out"; fail=1
    fi
  done
}

run_gdb() {  # run_gdb <output file> <fiber id> <gdb target arguments...>
  local out=$1 id=$2; shift 2
  gdb -nx -batch -ex 'set pagination off' -x "$script" \
      -ex 'info weft-fibers' -ex "weft-bt $id" "$@" > "$out" 2>&1
}

one_run() {  # one_run <name> <guard pages 0/1> <core too 0/1>
  local name=$1 guard=$2 core=$3
  rm -f "$dir/in" "$dir/out"
  mkfifo "$dir/in"
  WEFT_GUARD_PAGES=$guard "$target" < "$dir/in" > "$dir/out" &
  pid=$!
  exec 3> "$dir/in"  # the target runs until this closes
  for _ in $(seq 1 300); do
    grep -q '^READY' "$dir/out" && break
    sleep 0.1
  done
  local id
  id=$(sed -n 's/^READY //p' "$dir/out")
  if [[ -z $id ]]; then
    echo "FAIL ($name): the target did not get ready"; fail=1; return
  fi
  run_gdb "$dir/$name-live.txt" "$id" -p "$pid"
  check "$name, live" "$dir/$name-live.txt" "$id"
  if [[ $core == 1 ]]; then
    if gcore -o "$dir/core" "$pid" > /dev/null 2>&1; then
      run_gdb "$dir/$name-core.txt" "$id" "$target" "$dir/core.$pid"
      check "$name, core" "$dir/$name-core.txt" "$id"
    else
      echo "FAIL ($name): gcore"; fail=1
    fi
  fi
  exec 3>&-
  wait "$pid" || { echo "FAIL ($name): the target exited with $?"; fail=1; }
  pid=
}

one_run guarded 1 0
one_run unguarded 0 1
[[ $fail == 0 ]] && echo "PASS: live (with and without guard pages) and core"
exit $fail
