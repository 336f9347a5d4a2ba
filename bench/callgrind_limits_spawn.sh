#!/bin/bash
# Instructions per spawn+join (callgrind), limits off vs on, from the
# difference between n=20000 and n=40000 (cancels start-up and shutdown).
cd "$(dirname "$0")/.."
B=build/bench/weft-bench-spawn
run() { # $1 label, $2 n, env...
  local label=$1 n=$2; shift 2
  env WEFT_IO_BACKEND=epoll WEFT_STALL_WARN_MS=3600000 "$@" valgrind --tool=callgrind --callgrind-out-file=${OUT:-/tmp}/limits-cg-$label-$n.out $B n=$n reps=1 workers=1 >/dev/null 2>${OUT:-/tmp}/limits-cg-$label-$n.err
  grep -o "Collected : [0-9]*" ${OUT:-/tmp}/limits-cg-$label-$n.err | awk '{print $3}'
}
for label in off on; do
  if [ $label = on ]; then E="WEFT_MAX_FIBERS=1000000 WEFT_MAX_STACK_MEMORY=64G WEFT_MEMORY_LIMIT=64G"; else E="WEFT_MEMORY_LIMIT=none"; fi
  a=$(run $label 20000 $E); b=$(run $label 40000 $E)
  echo "$label n=20000 $a n=40000 $b per_fiber $(( (b - a) / 20000 ))"
done
