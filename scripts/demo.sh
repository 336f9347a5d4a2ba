#!/usr/bin/env bash
# `make demo`: build weft-kv, start it on 127.0.0.1:6380, drive it with the
# real redis-benchmark for about 10 s, print the results and the server's
# INFO weft section, then stop the server cleanly (SHUTDOWN, exit status 0).
#
#   DEMO_PORT=6380 DEMO_WORKERS=<cores> DEMO_IO=auto scripts/demo.sh
#
# Needs redis-tools (redis-benchmark, redis-cli): bootstrap installs it when
# missing and we are root.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

port=${DEMO_PORT:-6380}
io=${DEMO_IO:-auto}
build=${DEMO_BUILD_DIR:-build}
workers_flag=()
[[ -n "${DEMO_WORKERS:-}" ]] && workers_flag=(--workers "$DEMO_WORKERS")

scripts/bootstrap.sh redis-tools
scripts/configure.sh "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=ON
echo "== building weft-kv ($build/)"
cmake --build "$build" -j "$(nproc)" --target weft-kv
server=$build/examples/weft-kv/weft-kv

if redis-cli -p "$port" PING >/dev/null 2>&1; then
  echo "demo: something already answers on 127.0.0.1:$port; stop it or set DEMO_PORT" >&2
  exit 1
fi

log=$(mktemp /tmp/weft-kv-demo.XXXXXX.log)
"$server" --bind 127.0.0.1 --port "$port" --io "$io" "${workers_flag[@]}" >"$log" 2>&1 &
pid=$!
cleanup() {
  if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" 2>/dev/null || true; fi
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  redis-cli -p "$port" PING >/dev/null 2>&1 && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "demo: weft-kv exited during start-up:" >&2
    cat "$log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "== $(head -n1 "$log")"

# One table per run: redis-benchmark --csv gives rps and latency percentiles.
bench() {
  local title=$1
  shift
  echo
  echo "== $title"
  printf '%-16s %12s %9s %9s %9s %9s\n' test "requests/s" "avg ms" "p50 ms" "p99 ms" "max ms"
  redis-benchmark -h 127.0.0.1 -p "$port" --csv "$@" |
    tr -d '\r' | awk -F, 'NR > 1 { gsub(/"/, ""); printf "%-16s %12s %9s %9s %9s %9s\n", $1, $2, $3, $5, $7, $8 }'
}
bench "50 clients, one request at a time (-c 50)" -t ping,set,get,incr,mset -c 50 -n 60000 -r 100000
bench "50 clients, pipelines of 16 (-c 50 -P 16)" -t ping,set,get,incr,mset -c 50 -P 16 -n 400000 -r 100000

echo
echo "== INFO keyspace and weft"
redis-cli -p "$port" INFO keyspace | tr -d '\r'
redis-cli -p "$port" INFO weft | tr -d '\r'

echo
echo "== stopping weft-kv (SHUTDOWN)"
redis-cli -p "$port" SHUTDOWN >/dev/null 2>&1 || true
status=0
wait "$pid" || status=$?
trap - EXIT
tail -n +2 "$log"
rm -f "$log"
if ((status != 0)); then
  echo "demo: weft-kv exited with status $status" >&2
  exit 1
fi
echo "demo: weft-kv stopped cleanly (exit status 0)"
