#!/usr/bin/env bash
# BGSAVE of N keys (default 1,000,000 strings of 16 bytes) on weft-kv and
# redis-server 7.0.15, side by side in interleaved rounds: the BGSAVE's
# wall time (from the +Background saving started reply until INFO shows
# rdb_bgsave_in_progress:0, polled every 10 ms) and the GET p99 of
# redis-benchmark (20 clients, random keys of the set) while it runs,
# next to the GET p99 of the same run without a BGSAVE.
#
#   bench/compare_bgsave.sh [rounds] [keys]     (weft-kv from build/)
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/bench/lib.sh"
ROUNDS=${1:-3}
KEYS=${2:-1000000}
WEFT=${WEFT_KV:-$REPO/build/examples/weft-kv/weft-kv}
OUT=$(mktemp -d /tmp/weft-bgsave-XXXXXX)
FAILS=0
free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# The keys, as RESP for redis-cli --pipe: key:N -> 16 bytes.
python3 - "$KEYS" > "$OUT/load.resp" <<'PY'
import sys
n = int(sys.argv[1])
w = sys.stdout.write
for i in range(n):
    k = "key:%012d" % i
    w("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$16\r\n%016d\r\n" % (len(k), k, i))
PY

now_ms() { date +%s%3N; }
p99() { awk '/^  latency summary/{getline; getline; print $4; exit}' "$1"; }

bench_get() {  # PORT FILE
    redis-benchmark -p "$1" -t get -n 400000 -c 20 -r "$KEYS" --precision 3 > "$2" 2>&1
}

run_one() {  # NAME ROUND
    local name=$1 round=$2 port dir
    port=$(free_port)
    dir=$(mktemp -d "$OUT/$name-XXXXXX")
    if [ "$name" = weft-kv ]; then
        "$WEFT" --port "$port" --dir "$dir" > "$dir/log" 2>&1 &
    else
        redis-server --port "$port" --dir "$dir" --save '' --appendonly no > "$dir/log" 2>&1 &
    fi
    SPID=$!
    for _ in $(seq 100); do redis-cli -p "$port" ping > /dev/null 2>&1 && break; sleep 0.05; done
    redis-cli -p "$port" --pipe < "$OUT/load.resp" > /dev/null
    local n; n=$(redis-cli -p "$port" dbsize)
    [ "$n" = "$KEYS" ] || fail "$round" "$name has $n keys"
    # GET p99 alone, then GET p99 while a BGSAVE runs.
    bench_get "$port" "$dir/get-alone.txt"
    bench_get "$port" "$dir/get-bgsave.txt" &
    local bp=$!
    sleep 0.3
    local t0 t1
    t0=$(now_ms)
    redis-cli -p "$port" bgsave > /dev/null
    while redis-cli -p "$port" info persistence | grep -q 'rdb_bgsave_in_progress:1'; do sleep 0.01; done
    t1=$(now_ms)
    wait "$bp"
    redis-cli -p "$port" info persistence | grep -q 'rdb_last_bgsave_status:ok' || fail "$round" "$name bgsave failed"
    printf '%s round %s: bgsave %d ms, file %d bytes, GET p99 alone %s ms, during bgsave %s ms\n' \
        "$name" "$round" $((t1 - t0)) "$(stat -c %s "$dir/dump.rdb")" \
        "$(p99 "$dir/get-alone.txt")" "$(p99 "$dir/get-bgsave.txt")" | tee -a "$OUT/results.txt"
    kill_server
    rm -rf "$dir"
}

echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$OUT/results.txt"
for r in $(seq "$ROUNDS"); do
    if [ $((r % 2)) = 1 ]; then run_one weft-kv "$r"; run_one redis "$r"; else run_one redis "$r"; run_one weft-kv "$r"; fi
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/results.txt"
rm -f "$OUT/load.resp"
echo
{
echo "| round | server | BGSAVE ms | dump.rdb bytes | GET p99 alone (ms) | GET p99 during BGSAVE (ms) |"
echo "|---|---|---:|---:|---:|---:|"
sed -nE 's/^(.*) round ([0-9]+): bgsave ([0-9]+) ms, file ([0-9]+) bytes, GET p99 alone (.*) ms, during bgsave (.*) ms$/| \2 | \1 | \3 | \4 | \5 | \6 |/p' \
    "$OUT/results.txt"
} | tables_as_csv "$OUT/summary"
echo "results: $OUT/results.txt ($FAILS failures)"
