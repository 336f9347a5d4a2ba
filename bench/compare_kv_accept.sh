#!/usr/bin/env bash
# How weft-kv spreads connections under thread_per_core (series KA in
# docs/benchmarks.md): two weft-kv binaries, A and B, each run with
# WEFT_STRATEGY=thread_per_core and 2 workers, paired in interleaved rounds
# (the first of the pair alternating with the round). Two loads per pair:
#   churn:  redis-benchmark PING_INLINE -k 0 (a new connection per request:
#           the accept path is the work), -c 8 -n NC
#   steady: redis-benchmark GET -c 50 -P 1 -n N (connections kept)
# At the end, per load: the median of the per-round ratios B / A.
#
#   K_A=... K_B=... [ENV_B="WEFT_KV_ACCEPT=reuseport"] bench/compare_kv_accept.sh [R]
#
# The figures of series KA: A = weft-kv (one accept loop handing each
# connection to the next worker), B = the same build with
# bench/kv_accept_reuseport.patch applied and ENV_B=WEFT_KV_ACCEPT=1 (a
# SO_REUSEPORT listener and accept loop per worker, as weft-echo does).
set -u
R=${1:-3}
K_A=${K_A:?K_A: weft-kv binary A}
K_B=${K_B:?K_B: weft-kv binary B}
ENV_B=${ENV_B:-}
IO=${IO:-epoll}
N=${N:-100000}
NC=${NC:-20000}
OUT=${OUT:-$(mktemp -d /tmp/compare_kv_accept.XXXX)}
mkdir -p "$OUT"
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
run_one() {  # round which load
    local round=$1 which=$2 load=$3 port pid rps log bin env i
    port=$(free_port)
    log="$OUT/$which.$load.r$round.log"
    if [ "$which" = A ]; then bin=$K_A; env=; else bin=$K_B; env=$ENV_B; fi
    env $env WEFT_STRATEGY=thread_per_core "$bin" --port "$port" --workers 2 --io "$IO" >"$log" 2>&1 &
    pid=$!
    for i in $(seq 1 100); do grep -q 'ready to accept' "$log" 2>/dev/null && break; sleep 0.05; done
    if [ "$load" = churn ]; then
        rps=$(redis-benchmark -p "$port" -t ping_inline -c 8 -k 0 -n "$NC" --csv 2>>"$OUT/stderr.txt" |
            awk -F'","' 'NR == 2 { print $2 }')
    else
        rps=$(redis-benchmark -p "$port" -t get -c 50 -P 1 -n "$N" -r 100000 --csv 2>>"$OUT/stderr.txt" |
            awk -F'","' 'NR == 2 { print $2 }')
    fi
    kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
    printf '%s %s %s %s %s\n' "$round" "$which" "$load" "${rps:-NA}" "$(cut -d' ' -f1 /proc/loadavg)" |
        tee -a "$OUT/results.txt"
}
echo "# compare_kv_accept: $(date -u +%FT%TZ) R=$R io=$IO A=$K_A B=$K_B ($ENV_B)" \
     "load average $(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$R"); do
    for load in churn steady; do
        if [ $((round % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
        for w in $order; do run_one "$round" "$w" "$load"; done
    done
done
awk '{ v[$3, $2, $1] = $4; rounds[$1] = 1; loads[$3] = 1 }
     END {
         for (l in loads) {
             n = 0; split("", ra)
             for (r in rounds) {
                 a = v[l, "A", r]; b = v[l, "B", r]
                 if (a == "" || b == "" || a == "NA" || b == "NA" || a == 0) continue
                 ra[++n] = b / a
             }
             for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (ra[j] < ra[i]) { t = ra[i]; ra[i] = ra[j]; ra[j] = t }
             m = n == 0 ? 0 : (n % 2 ? ra[(n + 1) / 2] : (ra[n / 2] + ra[n / 2 + 1]) / 2)
             printf "%s: B/A median %.3f (min %.3f max %.3f, %d rounds)\n", l, m, ra[1], ra[n], n
         }
     }' "$OUT/results.txt"
echo "# raw outputs in $OUT"
