#!/usr/bin/env bash
# Soak test of weft-kv (issue 22): redis-benchmark with mixed commands for
# SOAK_SECONDS (default 600) against one weft-kv with the AOF on, while
# other clients are killed at random (SIGKILL mid-request), sampling RSS
# every 10 s. Prints a table: time, RSS, ops/s and p99 of each round, then
# the errors seen (must be 0) and the p99 drift (last rounds vs first).
# Not a ctest: it runs for minutes. No BGREWRITEAOF is issued (the soak
# predates it; bench/compare_kv_server.sh times it).
#
#   bench/soak_kv.sh [path/to/weft-kv]      (default build/examples/weft-kv/weft-kv)
#   SOAK_SECONDS=60 SOAK_IO=epoll bench/soak_kv.sh
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/build/examples/weft-kv/weft-kv}
seconds=${SOAK_SECONDS:-600}
io=${SOAK_IO:-auto}
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cli() { redis-cli -p "$port" "$@"; }

"$bin" --port "$port" --io "$io" --appendonly yes --appendfsync everysec --dir "$work" \
  --timeout 30 >"$work/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$killer" 2>/dev/null || true
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 500); do cli ping 2>/dev/null | grep -q PONG && break; sleep 0.02; done
rss() { cli info memory | tr -d '\r' | awk -F: '/^used_memory_rss:/ {print $2}'; }

# Random client kills: short benchmark clients SIGKILLed after 0.2-2 s.
(
  while :; do
    redis-benchmark -p "$port" -c 20 -n 10000000 -r 100000 -t set,get -q >/dev/null 2>&1 &
    victim=$!
    sleep "$(awk -v r=$RANDOM 'BEGIN { printf "%.1f", 0.2 + (r % 19) / 10 }')"
    kill -9 "$victim" 2>/dev/null || true
    wait "$victim" 2>/dev/null || true
    sleep 1
  done
) &
killer=$!

echo "weft-kv soak: $seconds s, io=$io, port $port, AOF everysec, random client kills"
echo "machine: $(nproc) cores; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%6s %10s %10s %9s %9s %9s %9s\n' t_s rss_mb set_rps set_p99 get_rps get_p99 errors
start=$(date +%s)
errors=0
first_p99=""
rounds=0
while [ $(( $(date +%s) - start )) -lt "$seconds" ]; do
  out=$(redis-benchmark -p "$port" -c 50 -n 200000 -r 100000 -d 64 -t set,get,incr,mset --csv 2>&1) || true
  bad=$(grep -ci 'error' <<<"$out" || true)
  errors=$((errors + bad))
  set_rps=$(awk -F'"' '$2=="SET" {print $4}' <<<"$out")
  set_p99=$(awk -F'"' '$2=="SET" {print $14}' <<<"$out")
  get_rps=$(awk -F'"' '$2=="GET" {print $4}' <<<"$out")
  get_p99=$(awk -F'"' '$2=="GET" {print $14}' <<<"$out")
  [ -n "$first_p99" ] || first_p99="$set_p99 $get_p99"
  last_p99="$set_p99 $get_p99"
  rounds=$((rounds + 1))
  printf '%6d %10.1f %10s %9s %10s %9s %9d\n' $(( $(date +%s) - start )) \
    "$(awk -v r="$(rss)" 'BEGIN { print r / 1048576 }')" "${set_rps:-?}" "${set_p99:-?}" \
    "${get_rps:-?}" "${get_p99:-?}" "$bad"
  kill -0 "$server" 2>/dev/null || { echo "weft-kv died"; cat "$work/server.log"; exit 1; }
done
kill "$killer" 2>/dev/null || true
wait "$killer" 2>/dev/null || true
sleep 3
echo "rounds: $rounds; errors: $errors; p99 ms (SET GET) first round: $first_p99, last: $last_p99"
echo "rss after 3 s idle: $(awk -v r="$(rss)" 'BEGIN { printf "%.1f MB", r / 1048576 }')"
echo "server log:"; grep -v '^$' "$work/server.log" | tail -5
[ "$errors" -eq 0 ]
