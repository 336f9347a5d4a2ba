#!/usr/bin/env bash
# Paired, interleaved comparison of weft-kv with redis-server 7 on the
# server features of issue 20 (compare_kv.sh's sibling; that script has the
# per-command redis-benchmark rows):
#
#   fanout   PUBLISH fan-out: 1 publisher, SUBS (100) subscribers of one
#            channel, MSGS messages of 16 bytes: messages delivered per
#            second (bench/kv_server_load.py fanout), and the server's CPU
#            time per delivered message
#   multi    MULTI + 5 commands + EXEC, 50 connections, TX transactions:
#            transactions per second (kv_server_load.py multi) and the
#            server's CPU time per transaction
#   bgsave / bgrewriteaof   KEYS (1,000,000) keys of 16-byte values loaded
#            with redis-cli --pipe; the job's wall time (from the command
#            to INFO's *_in_progress:0, polled every 10 ms), and the GET p99
#            (ms) of redis-benchmark runs (-t get -c 50 -n 20000 -r KEYS)
#            back to back while the job runs, against the same runs on the
#            idle server just before (median p99 of the runs)
#
# Each round starts each server in turn on a fresh --dir, with the AOF on
# (appendfsync everysec, auto rewrite off); the order alternates with the
# round (round 1: redis weft, round 2: weft redis, ...). The python client
# is single-threaded and can be the bottleneck of the fanout and multi
# rows: compare within a run, and read the CPU columns.
#
#   bench/compare_kv_server.sh [ROUNDS]      # default 3
#   KV=build/examples/weft-kv/weft-kv KEYS=200000 bench/compare_kv_server.sh 1
#
# Environment: KV (default <repo>/build/examples/weft-kv/weft-kv), REDIS
# (default /usr/bin/redis-server), WORKERS (weft-kv workers, default 2),
# PORT (first port, default 7700), SUBS (100), MSGS (20000), TX (20000),
# KEYS (1000000), OUT (raw outputs, default a fresh /tmp/compare_kv_server.XXXX).
# Prints one line per (round, server, row), then the per-round weft/redis
# ratios and their median.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
ROUNDS=${1:-3}
KV=${KV:-$repo/build/examples/weft-kv/weft-kv}
REDIS=${REDIS:-/usr/bin/redis-server}
WORKERS=${WORKERS:-2}
PORT=${PORT:-7700}
SUBS=${SUBS:-100}
MSGS=${MSGS:-20000}
TX=${TX:-20000}
KEYS=${KEYS:-1000000}
OUT=${OUT:-$(mktemp -d /tmp/compare_kv_server.XXXX)}
mkdir -p "$OUT"
load="$here/kv_server_load.py"
clk=$(getconf CLK_TCK)

[ -x "$KV" ] || { echo "no weft-kv at $KV (build it, or set KV)" >&2; exit 2; }
[ -x "$REDIS" ] || { echo "no redis-server at $REDIS" >&2; exit 2; }

# The keys, as a redis-cli --pipe input (made once).
if [ ! -s "$OUT/load.resp" ]; then
  python3 - "$KEYS" >"$OUT/load.resp" <<'PY'
import sys
out = sys.stdout.buffer
for i in range(int(sys.argv[1])):
    k = b"key:%012d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\nvvvvvvvvvvvvvvvv\r\n" % (len(k), k))
PY
fi

cpu() { awk -v c="$clk" '{ printf "%.3f", ($14 + $15) / c }' "/proc/$1/stat"; }

pid=""
start() {  # start NAME PORT DIR
  local name=$1 port=$2 dir=$3
  mkdir -p "$dir"
  if [ "$name" = redis ]; then
    "$REDIS" --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --databases 1 \
      --appendonly yes --appendfsync everysec --auto-aof-rewrite-percentage 0 \
      >"$dir/server.log" 2>&1 &
  else
    "$KV" --port "$port" --bind 127.0.0.1 --dir "$dir" --workers "$WORKERS" \
      --appendonly yes --appendfsync everysec >"$dir/server.log" 2>&1 &
  fi
  pid=$!
  for _ in $(seq 1 200); do
    redis-cli -p "$port" PING >/dev/null 2>&1 && break
    sleep 0.05
  done
  [ "$name" = weft ] && redis-cli -p "$port" CONFIG SET auto-aof-rewrite-percentage 0 >/dev/null
  return 0
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }

p99() {  # GET p99 (ms) of one short redis-benchmark run
  redis-benchmark -p "$1" -t get -c 50 -n 20000 -r "$KEYS" --csv 2>/dev/null |
    awk -F'"' '/"GET"/ { print $14 }'
}
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "nan" }'; }

job() {  # job PORT COMMAND INFO_FIELD -> "seconds p99_during"
  local port=$1 cmd=$2 field=$3 t0 t1 runs=()
  t0=$(date +%s.%N)
  redis-cli -p "$port" "$cmd" >/dev/null
  (while [ "$(redis-cli -p "$port" INFO persistence | tr -d '\r' | awk -F: -v f="$field" '$1 == f { print $2 }')" != 0 ]; do
     sleep 0.01
   done; date +%s.%N >"$OUT/job.end") &
  local poller=$!
  while kill -0 "$poller" 2>/dev/null; do runs+=("$(p99 "$port")"); done
  wait "$poller"
  t1=$(cat "$OUT/job.end")
  printf '%s %s\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')" "$(printf '%s\n' "${runs[@]}" | median)"
}

results="$OUT/results.txt"
: >"$results"
echo "# uptime: $(uptime)" | tee -a "$results"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) -eq 1 ]; then order="redis weft"; else order="weft redis"; fi
  s=0
  for name in $order; do
    port=$((PORT + 10 * r + s)); s=$((s + 1))
    dir="$OUT/r$r-$name"
    start "$name" "$port" "$dir"
    c0=$(cpu "$pid")
    f=$(python3 "$load" fanout "$port" "$SUBS" "$MSGS" 16)
    c1=$(cpu "$pid")
    rate=$(sed 's/.*delivered_per_s=\([0-9.]*\).*/\1/' <<<"$f")
    delivered=$(sed 's/.*delivered=\([0-9]*\).*/\1/' <<<"$f")
    echo "round $r $name fanout msgs_per_s $rate cpu_us_per_msg $(awk -v a="$c0" -v b="$c1" -v n="$delivered" 'BEGIN { printf "%.3f", (b - a) * 1e6 / n }')" | tee -a "$results"
    c0=$(cpu "$pid")
    m=$(python3 "$load" multi "$port" 50 "$TX")
    c1=$(cpu "$pid")
    rate=$(sed 's/.*tx_per_s=\([0-9.]*\).*/\1/' <<<"$m")
    echo "round $r $name multi tx_per_s $rate cpu_us_per_tx $(awk -v a="$c0" -v b="$c1" -v n="$TX" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')" | tee -a "$results"
    redis-cli -p "$port" --pipe <"$OUT/load.resp" >/dev/null
    idle=$(for _ in 1 2 3; do p99 "$port"; done | median)
    read -r secs during < <(job "$port" BGSAVE rdb_bgsave_in_progress)
    echo "round $r $name bgsave seconds $(printf '%.2f' "$secs") get_p99_ms_during $during get_p99_ms_idle $idle" | tee -a "$results"
    read -r secs during < <(job "$port" BGREWRITEAOF aof_rewrite_in_progress)
    echo "round $r $name bgrewriteaof seconds $(printf '%.2f' "$secs") get_p99_ms_during $during get_p99_ms_idle $idle" | tee -a "$results"
    echo "round $r $name keys $(redis-cli -p "$port" DBSIZE)" >>"$results"
    stop
  done
done

# Per-round weft/redis ratios of each figure, then their median.
echo "# weft/redis ratios: median over rounds [per round]"
awk '$1 == "round" && $4 != "keys" {
       for (i = 5; i + 1 <= NF; i += 2) { v[$2 SUBSEP $3 SUBSEP $4 SUBSEP $i] = $(i + 1); key[$4 " " $i] = 1 }
       rounds[$2] = 1
     }
     END {
       for (k in key) {
         split(k, p, " "); n = 0; line = ""
         for (r in rounds) {
           d = v[r SUBSEP "redis" SUBSEP p[1] SUBSEP p[2]]
           if (d + 0 > 0) { x = v[r SUBSEP "weft" SUBSEP p[1] SUBSEP p[2]] / d; a[++n] = x; line = line sprintf(" %.2f", x) }
         }
         for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
         if (n) printf "%-14s %-20s %.2f [%s ]\n", p[1], p[2], a[int((n + 1) / 2)], line
       }
     }' "$results" | sort
echo "# raw outputs in $OUT"
