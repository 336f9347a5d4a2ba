#!/usr/bin/env bash
# Paired comparison of the scheduling strategies (issue 17 §4): weft-echo
# and weft-kv under WEFT_STRATEGY=thread_per_core against work_stealing,
# with 1 and 2 workers, in interleaved rounds.
#
# Each round runs, for each server (echo, kv) and worker count (1, 2), the
# two strategies one after the other, the first of the pair alternating
# with the round; each run starts a fresh server on a free port, runs one
# load, and stops it. Loads: the peers' Go `echoload` (64-byte messages,
# -c 50, 1 s warm-up + DUR measured) against weft-echo; redis-benchmark
# GET -c 50 -P 1 -n N against weft-kv. At the end: per configuration the
# median (min..max) of req/s over the rounds, and the median of the
# per-round ratios thread_per_core / work_stealing. The 1-minute load
# average is printed with every run: this script does not wait for a quiet
# machine (compare_echo.sh / compare_kv.sh do), so read the ratios, not the
# absolute figures.
#
#   bench/compare_strategy.sh [R]     # R rounds, default 3
#
# Environment: E (weft-echo, default <repo>/build/examples/weft-echo), K
# (weft-kv, default <repo>/build/examples/weft-kv/weft-kv), LOAD (echoload;
# default <peers>/go/bin/echoload, see bench/lib.sh), IO (weft backend,
# default epoll), DUR (echoload's measured time, default 3s), N (GETs per
# redis-benchmark run, default 100000), OUT (raw outputs, default a fresh
# /tmp/compare_strategy.XXXX), WORKERS_LIST (default "1 2").
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
R=${1:-3}
. "$HERE/lib.sh"
P=$(peers_dir "$REPO")
E=${E:-$REPO/build/examples/weft-echo}
K=${K:-$REPO/build/examples/weft-kv/weft-kv}
LOAD=${LOAD:-$P/go/bin/echoload}
IO=${IO:-epoll}
DUR=${DUR:-3s}
N=${N:-100000}
WORKERS_LIST=${WORKERS_LIST:-1 2}
OUT=${OUT:-$(mktemp -d /tmp/compare_strategy.XXXX)}
mkdir -p "$OUT"
for f in "$E" "$K" "$LOAD"; do
    [ -x "$f" ] || { echo "compare_strategy: missing $f" >&2; exit 2; }
done
command -v redis-benchmark >/dev/null || { echo "compare_strategy: no redis-benchmark" >&2; exit 2; }

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
loadavg() { cut -d' ' -f1 /proc/loadavg; }

# run_one ROUND SERVER WORKERS STRATEGY: one server, one load; appends
# "round server workers strategy rps load" to $OUT/results.txt.
run_one() {
    local round=$1 server=$2 w=$3 strat=$4 port pid rps log i
    port=$(free_port)
    log="$OUT/$server.w$w.$strat.r$round.log"
    if [ "$server" = echo ]; then
        WEFT_STRATEGY=$strat "$E" --port "$port" --workers "$w" --io "$IO" >"$log" 2>&1 &
    else
        WEFT_STRATEGY=$strat "$K" --port "$port" --workers "$w" --io "$IO" >"$log" 2>&1 &
    fi
    pid=$!
    for i in $(seq 1 100); do
        grep -q -e 'listening on' -e 'ready to accept' "$log" 2>/dev/null && break
        sleep 0.05
    done
    if [ "$server" = echo ]; then
        rps=$("$LOAD" -addr 127.0.0.1:"$port" -c 50 -d "$DUR" -name x 2>>"$OUT/stderr.txt" |
            awk '$1 == "x_rps" || $1 == "x_req_per_s" || $1 ~ /^x_.*rps/ { print $2; exit }')
    else
        rps=$(redis-benchmark -p "$port" -t get -c 50 -P 1 -n "$N" -r 100000 --csv 2>>"$OUT/stderr.txt" |
            awk -F'","' 'NR == 2 { print $2 }')
    fi
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    printf '%s %s %s %s %s %s\n' "$round" "$server" "$w" "$strat" "${rps:-NA}" "$(loadavg)" |
        tee -a "$OUT/results.txt"
}

echo "# compare_strategy: $(date -u +%FT%TZ) R=$R io=$IO echo=$E kv=$K dur=$DUR n=$N" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs"
echo "# round server workers strategy req/s load1"
for round in $(seq 1 "$R"); do
    for server in echo kv; do
        for w in $WORKERS_LIST; do
            if [ $((round % 2)) -eq 1 ]; then
                order="work_stealing thread_per_core"
            else
                order="thread_per_core work_stealing"
            fi
            for strat in $order; do run_one "$round" "$server" "$w" "$strat"; done
        done
    done
done

echo "# config: median (min..max) req/s over the rounds; ratio = median of per-round tpc/ws"
{
echo "| server, workers | work_stealing req/s, median (min..max) | thread_per_core | median of per-round tpc/ws | rounds |"
echo "|---|---:|---:|---:|---:|"
awk '
    { v[$2 " w" $3 " " $4, $1] = $5; rounds[$1] = 1; cfg[$2 " w" $3] = 1 }
    function median(a, n,   i, j, t) {
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
        for (c in cfg) {
            n = 0; split("", ws); split("", tp); split("", ra)
            for (r in rounds) {
                a = v[c " work_stealing", r]; b = v[c " thread_per_core", r]
                if (a == "" || b == "" || a == "NA" || b == "NA" || a == 0) continue
                n++; ws[n] = a; tp[n] = b; ra[n] = b / a
            }
            if (n == 0) { printf "| %s | no complete round | | | 0 |\n", c; continue }
            lo_w = hi_w = ws[1]; lo_t = hi_t = tp[1]
            for (i = 1; i <= n; i++) {
                if (ws[i] < lo_w) lo_w = ws[i]; if (ws[i] > hi_w) hi_w = ws[i]
                if (tp[i] < lo_t) lo_t = tp[i]; if (tp[i] > hi_t) hi_t = tp[i]
            }
            printf "| %s | %.0f (%.0f..%.0f) | %.0f (%.0f..%.0f) | %.3f | %d |\n",
                c, median(ws, n), lo_w, hi_w, median(tp, n), lo_t, hi_t, median(ra, n), n
        }
    }' "$OUT/results.txt" | sort
} | tables_as_csv "$OUT/summary"
echo "# raw outputs in $OUT"
