#!/usr/bin/env bash
# make test-loaded: the core suites (the runtime's own, not weft-kv's or
# weft-http-hello's) run by ctest with two CPU-burning processes beside
# them, as on a loaded 2-core machine: no test may depend on scheduling
# delays (docs/design/HACKING.md). The burners are ended on exit, whatever
# happens.
#
#   scripts/test_loaded.sh <build-dir> [ctest arguments...]
set -euo pipefail

dir=${1:?usage: $0 <build-dir> [ctest arguments...]}
shift

burners=()
stop() {
  for pid in "${burners[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${burners[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop EXIT

for _ in 1 2; do
  bash -c 'while :; do :; done' &
  burners+=($!)
done
echo "test-loaded: CPU burners ${burners[*]} running beside the tests"

core='^weft_test_(context|fiber|sched|api|chan|sync|io|net|fs|process|signal|gen|cancel|scope)$'
ctest --test-dir "$dir" --output-on-failure --no-tests=error -R "$core" "$@"
