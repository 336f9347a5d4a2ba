#!/usr/bin/env bash
# Paired comparison of weft-kv (examples/weft-kv) with the real redis-server
# 7, both driven by the real redis-benchmark (single-threaded, closed loop).
# Client and servers share the machine's cores (2 here), or, with
# MODE=pinned, each server runs on one core (taskset -c SRV_CPU; weft-kv with
# one worker unless WORKERS says otherwise; redis as is) and redis-benchmark on
# another (taskset -c CLI_CPU): issue 21's pinned mode.
#
# Each round starts three servers in turn, each on a port of its own:
# `redis-server --save '' --appendonly no --port P` (plus --bind 127.0.0.1
# and --dir OUT), `weft-kv --io io_uring --workers 2` and
# `weft-kv --io epoll --workers 2`. The start of the order rotates with the
# round (round 1: redis uring epoll, round 2: uring epoll redis, ...). On
# each server process the loads run in this order: for each -c, for -P 1
# then -P 16, redis-benchmark's default test list in its own order —
# ping_inline ping_mbulk set get incr lpush rpush lpop rpop sadd hset spop
# zadd zpopmin lrange_100 lrange_300 lrange_500 lrange_600 mset — each test
# its own redis-benchmark run
#   redis-benchmark -p P -t TEST -c C -P PIPE -n N -r 100000
# (its full report, not --csv: the summary gives req/s and avg/p50/p99/max,
# and the latency histogram's percentile list gives p999 as its first row at
# or above 99.9 %, which HdrHistogram's halving ticks put at 99.902 %) so that the server's CPU time (utime+stime of /proc/PID/stat, all its
# threads) can be charged to one test. N is N1 for -P 1 and N16 for -P 16;
# the LRANGE tests, whose replies are 100 to 600 elements, use NL1 / NL16
# (a run of `-t lrange_N` first fills the list with LPUSH, in the same run:
# its CPU time is charged to the LRANGE row, its req/s and latencies are
# the LRANGE requests' own). GET reads the keyspace the SET before it
# filled, SPOP pops what SADD added, ZPOPMIN what ZADD added, LPOP and RPOP
# what LPUSH and RPUSH pushed (same -r on every server). A test whose
# command the server does not have (COMMAND INFO answers nil; weft-kv
# before lists and sorted sets) is not run; its rows say "unsupported".
# Before each round the script waits (up to QUIET_MAX s) until no compiler
# runs and the CPUs are < 15 % busy over 1 s. At the end: per (config, test,
# server) the median (min..max) over the clean rounds of req/s, p50, p99 and
# p999 latency, the server's and redis-benchmark's CPU time per request and the
# share of the CPUs that other processes used; then the weft/redis ratios
# taken within each round (median of the per-round ratios) against the
# goals (shared: req/s >= 1.0x redis on every row, >= 1.2x at -c 1000; p99 <=
# redis; pinned: req/s >= 1.2x at -P 16, >= 1.0x at -P 1, p99 <= redis; both:
# server CPU per request <= 0.8x redis's),
# and a compact table of both. A round is clean when other processes used
# <= MAX_OTHER % of the CPUs during each of its loads; the script runs rounds
# until R are clean.
#
#   bench/compare_kv.sh [R]          # R clean rounds, default 3
#   KV=build/examples/weft-kv/weft-kv OUT=/tmp/cmp_kv bench/compare_kv.sh 5
#   CONNS="50 1000" TESTS="ping_inline ping_mbulk set get" bench/compare_kv.sh   # series K's set
#   MODE=pinned TESTS="set get" bench/compare_kv.sh 5   # server on CPU 0, client on CPU 1
#   bench/series21.sh            # issue 21's full series: both modes, kv and echo
#
# Environment: KV (the weft-kv binary, default
# <repo>/build-bench-kv/examples/weft-kv/weft-kv), REDIS (default
# /usr/bin/redis-server), RB (redis-benchmark, default from PATH), MODE
# (shared, the default, or pinned), SRV_CPU / CLI_CPU (the CPUs of server and
# client in pinned mode, default 0 / 1), WORKERS (weft workers, default 2,
# 1 when pinned), PORT (first port, default 7600; round r, server
# s uses PORT + 10*r + s), CONNS (default "50"), PIPES (default "1 16"),
# TESTS (default: the list above), N1 / N16 (requests per test at -P 1 / at
# any other -P, default 200000 / 2000000), NL1 / NL16 (the same for the
# LRANGE tests, default 20000 / 100000), KEYSPACE (-r, default 100000),
# LOAD_TIMEOUT (s per redis-benchmark run, default 180),
# OUT (dir for the raw outputs, default a fresh /tmp/compare_kv.XXXX),
# QUIET_MAX (s to wait for a quiet machine per round, default 120, 0 =
# don't), MAX_OTHER (a round in which other processes used more than this %
# of the CPUs during a load: the load is run again, after a quiet gate of up
# to 60 s, up to LOAD_TRIES runs in all (default 4); a round still left with
# such a load is left out of the summary, listed, and another round is run;
# default 10, 100 = keep every run), ATTEMPTS (at most this many rounds in
# all, to get R clean ones; default 3*R).
# Exit status: 0 when every load ran (or was unsupported), every server
# behaved and R rounds were clean; 1 otherwise (see OUT/failures.txt); 2 on
# a usage or setup error. Goals not met do not change the exit status; the
# tables say so.
#
# Build first if needed:
#   cmake -S . -B build-bench-kv -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_BUILD_TESTS=OFF
#   ninja -C build-bench-kv weft-kv
# and apt-get install redis-server redis-tools (Debian: redis 7).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
R=${1:-${R:-3}}
KV=${KV:-$REPO/build-bench-kv/examples/weft-kv/weft-kv}
REDIS=${REDIS:-/usr/bin/redis-server}
RB=${RB:-$(command -v redis-benchmark)}
MODE=${MODE:-shared}
SRV_CPU=${SRV_CPU:-0}
CLI_CPU=${CLI_CPU:-1}
case $MODE in
    shared) WORKERS=${WORKERS:-2}; SRV_RUN=(); CLI_RUN=() ;;
    pinned) WORKERS=${WORKERS:-1}; SRV_RUN=(taskset -c "$SRV_CPU"); CLI_RUN=(taskset -c "$CLI_CPU") ;;
    *) echo "MODE=$MODE: want shared or pinned" >&2; exit 2 ;;
esac
PORT=${PORT:-7600}
CONNS=${CONNS:-50}
PIPES=${PIPES:-1 16}
ALL_TESTS="ping_inline ping_mbulk set get incr lpush rpush lpop rpop sadd hset spop zadd zpopmin lrange_100 lrange_300 lrange_500 lrange_600 mset"
TESTS=${TESTS:-$ALL_TESTS}
N1=${N1:-200000}
N16=${N16:-2000000}
NL1=${NL1:-20000}
NL16=${NL16:-100000}
KEYSPACE=${KEYSPACE:-100000}
LOAD_TIMEOUT=${LOAD_TIMEOUT:-180}
QUIET_MAX=${QUIET_MAX:-120}
MAX_OTHER=${MAX_OTHER:-10}
LOAD_TRIES=${LOAD_TRIES:-4}

[[ $R =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [rounds >= 1]" >&2; exit 2; }
[ "$MODE" = pinned ] && { pinned_cpus_ok || exit 2; }
ATTEMPTS=${ATTEMPTS:-$((3 * R))}
[[ $LOAD_TRIES =~ ^[1-9][0-9]*$ ]] || { echo "LOAD_TRIES=$LOAD_TRIES: want >= 1" >&2; exit 2; }
[[ $ATTEMPTS =~ ^[1-9][0-9]*$ ]] && [ "$ATTEMPTS" -ge "$R" ] || { echo "ATTEMPTS=$ATTEMPTS: want >= R=$R" >&2; exit 2; }
[[ $PORT =~ ^[0-9]+$ ]] && [ $((PORT + 10 * ATTEMPTS + 2)) -le 65535 ] && [ "$PORT" -ge 1024 ] ||
    { echo "PORT=$PORT: want 1024..$((65535 - 10 * ATTEMPTS - 2))" >&2; exit 2; }
for v in N1 N16 NL1 NL16 KEYSPACE LOAD_TIMEOUT WORKERS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$v=${!v}: want a positive integer" >&2; exit 2; }
done
for p in $PIPES; do [[ $p =~ ^[1-9][0-9]*$ ]] || { echo "PIPES: '$p' is not a positive integer" >&2; exit 2; }; done
for t in $TESTS; do
    case " $ALL_TESTS " in *" $t "*) ;; *) echo "TESTS: '$t' is not one of $ALL_TESTS" >&2; exit 2 ;; esac
done

# command_of TEST: the command a test sends (to ask the server whether it has it).
command_of() {
    case $1 in
        ping_*) echo ping ;;
        lrange_*) echo lrange ;;
        *) echo "$1" ;;
    esac
}

missing=0
[ -x "$KV" ] || { echo "missing $KV; build it with:
  cd $REPO && cmake -S . -B build-bench-kv -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_BUILD_TESTS=OFF
  ninja -C build-bench-kv weft-kv
(or point KV at another weft-kv, e.g. KV=build/examples/weft-kv/weft-kv)" >&2; missing=1; }
[ -x "$REDIS" ] || { echo "missing $REDIS (apt-get install redis-server), or set REDIS" >&2; missing=1; }
[ -n "$RB" ] && [ -x "$RB" ] || { echo "missing redis-benchmark (apt-get install redis-tools), or set RB" >&2; missing=1; }
command -v python3 >/dev/null || { echo "python3 is needed for the summary" >&2; missing=1; }
command -v ss >/dev/null || { echo "ss (iproute2) is needed to check ports" >&2; missing=1; }
[ $missing -eq 0 ] || exit 2
RB_VER=$("$RB" --version 2>/dev/null | head -n 1)
REDIS_VER=$("$REDIS" --version 2>/dev/null | head -n 1)
[[ $REDIS_VER =~ v=7\. ]] || echo "# warning: $REDIS is not redis 7: $REDIS_VER" >&2

# Every connection costs one fd in redis-benchmark and one in the server
# (both servers raise their own soft limit to the hard one if they need to).
max_c=0
for c in $CONNS; do
    [[ $c =~ ^[1-9][0-9]*$ ]] || { echo "CONNS: '$c' is not a positive integer" >&2; exit 2; }
    [ "$c" -gt "$max_c" ] && max_c=$c
done
need_fd=$((max_c + 256))
if [ "$(ulimit -Sn)" != unlimited ] && [ "$(ulimit -Sn)" -lt "$need_fd" ]; then
    hard=$(ulimit -Hn)
    if [ "$hard" != unlimited ] && [ "$hard" -lt "$need_fd" ]; then
        echo "ulimit -n: need $need_fd fds for -c $max_c, hard limit is $hard" >&2; exit 2
    fi
    ulimit -Sn "$need_fd" || { echo "cannot raise ulimit -n to $need_fd" >&2; exit 2; }
fi

OUT=${OUT:-$(mktemp -d /tmp/compare_kv.XXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RES=$OUT/results.txt   # "round config metric value", config = server.cC.pP.test
: >"$RES"
: >"$OUT/failures.txt"
FAILS=0
SPID=

cleanup() { kill_server; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# total, idle+iowait, steal and irq+softirq jiffies of all CPUs
cpu_ticks() { awk '/^cpu /{ print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6, $9, $7+$8 }' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)
# proc_cpu PID: user+system CPU seconds*CLK_TCK of PID (all its threads)
proc_cpu() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Waits until no compiler/linker runs and the CPUs were < 15 % busy over 1 s.
quiet_gate() {
    local t0=$SECONDS a b
    while [ $((SECONDS - t0)) -lt "$QUIET_MAX" ]; do
        if ! ps -eo comm= | grep -Eqx 'cc1plus|cc1|collect2|ld|ld\.gold|ninja|make|go|compile|link'; then
            a=$(cpu_ticks); sleep 1; b=$(cpu_ticks)
            if awk -v a="$a" -v b="$b" 'BEGIN { split(a, x); split(b, y); t = y[1] - x[1];
                   exit !(t > 0 && (t - (y[2] - x[2])) / t < 0.15) }'; then
                return 0
            fi
        else
            sleep 1
        fi
    done
    echo "# round $1: machine not quiet after ${QUIET_MAX}s, running anyway (load average $(loadavg))"
}


# start_server ROUND NAME PORT: starts the server, sets SPID; non-zero on failure.
start_server() {
    local round=$1 name=$2 port=$3 log=$OUT/server-$2.log i
    # A socket left by an earlier process (an io_uring ring is torn down
    # asynchronously, with its pending accept) must not answer for ours.
    for i in $(seq 50); do listening "$port" || break; sleep 0.1; done
    if listening "$port"; then fail "$round" "port $port is already in use ($name)"; return 1; fi
    echo "## round $round $name port $port $(date -u +%T)" >>"$log"
    case $name in
        redis) "${SRV_RUN[@]}" "$REDIS" --save '' --appendonly no --port "$port" --bind 127.0.0.1 --dir "$OUT" >>"$log" 2>&1 & ;;
        uring) "${SRV_RUN[@]}" "$KV" --port "$port" --workers "$WORKERS" --io io_uring >>"$log" 2>&1 & ;;
        epoll) "${SRV_RUN[@]}" "$KV" --port "$port" --workers "$WORKERS" --io epoll >>"$log" 2>&1 & ;;
    esac
    SPID=$!
    for i in $(seq 50); do
        kill -0 "$SPID" 2>/dev/null || break
        listening "$port" && break
        sleep 0.1
    done
    if ! kill -0 "$SPID" 2>/dev/null || ! listening "$port"; then
        fail "$round" "$name did not listen on $port (log $log)"
        cleanup
        return 1
    fi
    sleep 0.1
    # Make sure the server is the one asked for: weft-kv names its backend.
    if [ "$name" = redis ]; then
        if ! tail -n 30 "$log" | grep -q 'Ready to accept connections'; then
            fail "$round" "redis-server did not report 'Ready to accept connections' (log $log)"
            cleanup
            return 1
        fi
    else
        local want=epoll
        [ "$name" = uring ] && want=io_uring
        if ! tail -n 1 "$log" | grep -q "($WORKERS workers, $want, appendonly no)"; then
            fail "$round" "$name: weft-kv did not report '$WORKERS workers, $want': $(tail -n 1 "$log")"
            cleanup
            return 1
        fi
    fi
    return 0
}

# stop_server ROUND NAME PORT: records INFO stats, then SIGTERM, up to 5 s, then SIGKILL.
stop_server() {
    local i rc
    [ -n "$SPID" ] || return 0
    if command -v redis-cli >/dev/null; then
        { echo "## round $1 $2 $(date -u +%T)"; timeout 5 redis-cli -p "$3" INFO stats | tr -d '\r' |
              grep -E '^(total_connections_received|total_commands_processed|keyspace_hits|keyspace_misses|rejected_connections):';
          echo "dbsize:$(timeout 5 redis-cli -p "$3" DBSIZE)"; } >>"$OUT/info.txt" 2>&1
    fi
    kill -TERM "$SPID" 2>/dev/null
    for i in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SPID" 2>/dev/null; then
        fail "$1" "$2 did not exit within 5 s of SIGTERM, killed"
        kill -KILL "$SPID" 2>/dev/null
    fi
    wait "$SPID" 2>/dev/null
    rc=$?
    # 0 or 143 (128 + SIGTERM) are a clean stop.
    [ $rc -eq 0 ] || [ $rc -eq 143 ] || fail "$1" "$2 exited with status $rc"
    SPID=
}

# load_once ROUND NAME PORT C PIPE TEST FILE: one redis-benchmark run against
# the running server; writes its "round config metric value" lines to FILE.
load_once() {
    local round=$1 name=$2 port=$3 c=$4 pipe=$5 test=$6 file=$7 n=$N16 out rc c0 c1 t0 t1 i0 i1 s0 s1 q0 q1 cli
    local cfg=$name.c$c.p$pipe.$test want
    [ "$pipe" -eq 1 ] && n=$N1
    case $test in lrange_*) n=$NL16; [ "$pipe" -eq 1 ] && n=$NL1 ;; esac
    want=$(echo "$test" | tr a-z A-Z)
    : >"$file"
    # A command the server lacks: recorded as unsupported, not run.
    if [ -z "$(timeout 5 redis-cli -p "$port" COMMAND INFO "$(command_of "$test")" 2>/dev/null | head -n 1)" ]; then
        echo "$round $cfg unsupported 1" >"$file"
        printf 'round %s %-26s unsupported by %s' "$round" "$cfg" "$name"
        return 0
    fi
    c0=$(proc_cpu "$SPID"); read -r t0 i0 s0 q0 < <(cpu_ticks)
    # `times` after redis-benchmark: its CPU time (as a child of that bash) on fd 3.
    out=$(timeout -k 5 "$LOAD_TIMEOUT" bash -c '"$@"; rc=$?; times >&3; exit $rc' redis-benchmark \
        "${CLI_RUN[@]}" "$RB" -h 127.0.0.1 -p "$port" -t "$test" -c "$c" -P "$pipe" -n "$n" -r "$KEYSPACE" \
        3>"$OUT/times.tmp" 2>>"$OUT/stderr.txt")
    rc=$?
    # The progress lines ("GET: rps=... (overall: ...)") end in \r.
    out=$(printf '%s\n' "$out" | tr '\r' '\n' | grep -Ev ': rps=|^ *$')
    c1=$(proc_cpu "$SPID"); read -r t1 i1 s1 q1 < <(cpu_ticks)
    cli=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/);
                         print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$OUT/times.tmp")
    printf '## round %s %s %s\n%s\n' "$round" "$cfg" "$(date -u +%T)" "$out" >>"$OUT/load.log"
    if [ $rc -ne 0 ]; then
        fail "$round" "redis-benchmark -t $test -c $c -P $pipe against $name rc=$rc (stderr in $OUT/stderr.txt)"
        return 1
    fi
    if ! kill -0 "$SPID" 2>/dev/null; then
        fail "$round" "$name died during redis-benchmark -t $test -c $c -P $pipe"
        return 1
    fi
    # One section per test: "====== GET ======" (an LRANGE run's list fill
    # first: "====== LPUSH (needed to benchmark LRANGE) ======"), the
    # percentile list "99.902% <= 3.311 milliseconds (cumulative count N)",
    # "throughput summary: X requests per second", then under "latency
    # summary (msec):" a header "avg min p50 p95 p99 max" and its values.
    if ! printf '%s\n' "$out" | awk -v r="$round" -v cfg="$cfg" -v want="$want" -v n="$n" '
        /^====== .* ======$/ { split($2, name, " "); mine = name[1] == want && index($0, "(needed to benchmark") == 0
                               p999 = ""; rps = ""; hdr = 0; next }
        !mine { next }
        $2 == "<=" && $4 == "milliseconds" && p999 == "" { sub(/%$/, "", $1); if ($1 + 0 >= 99.9) p999 = $3; next }
        $1 == "throughput" && $2 == "summary:" { rps = $3; next }
        $1 == "avg" && $2 == "min" && $3 == "p50" && $5 == "p99" && $6 == "max" { hdr = 1; next }
        hdr && NF == 6 && rps > 0 && p999 != "" { rows++; hdr = 0
            printf "%s %s rps %s\n%s %s avg_us %.1f\n%s %s p50_us %.1f\n%s %s p99_us %.1f\n%s %s p999_us %.1f\n%s %s max_us %.1f\n%s %s requests %d\n",
                r, cfg, rps, r, cfg, 1000 * $1, r, cfg, 1000 * $3, r, cfg, 1000 * $5, r, cfg, 1000 * p999,
                r, cfg, 1000 * $6, r, cfg, n; next }
        END { exit rows != 1 }' >>"$file"; then
        fail "$round" "redis-benchmark -t $test -c $c -P $pipe against $name: unexpected output (in $OUT/load.log)"
        : >"$file"
        return 1
    fi
    # Over the whole redis-benchmark run (connection set-up included): server
    # and client CPU seconds, the wall time, and the share of all CPUs that
    # other processes used ("other": user + system time of neither;
    # irq/softirq time, which the loopback traffic causes but no process is
    # charged for, is left out).
    awk -v r="$round" -v cfg="$cfg" -v d=$((c1 - c0)) -v w=$((t1 - t0)) \
        -v b=$((t1 - t0 - (i1 - i0) - (s1 - s0) - (q1 - q0))) \
        -v cli="${cli:-0}" -v hz="$CLK_TCK" -v n="$(nproc)" 'BEGIN {
        printf "%s %s srv_cpu_s %.3f\n%s %s cli_cpu_s %.3f\n%s %s wall_s %.3f\n", r, cfg, d / hz,
            r, cfg, cli, r, cfg, w / hz / n
        o = w > 0 ? (b / hz - d / hz - cli) / (w / hz) : 0; if (o < 0) o = 0
        printf "%s %s other_cpu_pct %.1f\n", r, cfg, 100 * o }' >>"$file"
    awk '{ v[$3] = $4 } END { printf "round %s %-26s %9.0f req/s  p50 %7.0f us  p99 %7.0f us  p999 %7.0f us  cpu: server %.2f s (%.2f us/req), client %.2f s, other %.1f%%",
        $1, $2, v["rps"], v["p50_us"], v["p99_us"], v["p999_us"], v["srv_cpu_s"], 1e6 * v["srv_cpu_s"] / v["requests"], v["cli_cpu_s"], v["other_cpu_pct"] }' "$file"
}

# load ROUND NAME PORT C PIPE TEST: load_once; while other processes took
# more than MAX_OTHER % of the CPUs, waits for a quiet machine and runs it
# again (up to LOAD_TRIES runs in all). The last run's figures count.
load() {
    local try other
    for try in $(seq "$LOAD_TRIES"); do
        load_once "$@" "$OUT/load.tmp" || return 1
        if grep -q ' unsupported ' "$OUT/load.tmp"; then echo; break; fi
        other=$(awk '$3 == "other_cpu_pct" { print $4 }' "$OUT/load.tmp")
        if awk -v o="$other" -v x="$MAX_OTHER" 'BEGIN { exit !(o <= x) }' || [ "$try" -eq "$LOAD_TRIES" ]; then
            echo
            break
        fi
        echo "  <- other > $MAX_OTHER%, again"
        [ "$QUIET_MAX" -gt 0 ] && QUIET_MAX=$((QUIET_MAX < 60 ? QUIET_MAX : 60)) quiet_gate "$1"
    done
    cat "$OUT/load.tmp" >>"$RES"
}

SERVERS=(redis uring epoll)
HASH=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)
DIRTY=$(git -C "$REPO" status --porcelain -- src include examples CMakeLists.txt 2>/dev/null | grep -q . && echo '+dirty')
echo "# compare_kv: $(date -u +%FT%TZ) mode=$MODE$([ "$MODE" = pinned ] && echo " (server on CPU $SRV_CPU, client on CPU $CLI_CPU)") R=$R (clean rounds; other <= $MAX_OTHER%, at most $ATTEMPTS rounds) weft-kv=$KV workers=$WORKERS conns='$CONNS' pipes='$PIPES' tests='$TESTS' n=$N1 (-P 1) / $N16 (-P >1) -r $KEYSPACE out=$OUT"
echo "# $(uname -srm) cpus=$(nproc); $REDIS_VER; $RB_VER; ulimit -n $(ulimit -Sn); load average $(loadavg); weft commit $HASH$DIRTY; weft-kv built $(date -u -r "$KV" +%FT%TZ) md5 $(md5sum <"$KV" | cut -c1-12)$(env | grep -q '^WEFT_' && echo "; env: $(env | grep '^WEFT_' | tr '\n' ' ')")"
read -r TT0 _ TS0 _ < <(cpu_ticks)
STEALS=()
CLEAN=0
r=0
while [ "$CLEAN" -lt "$R" ] && [ "$r" -lt "$ATTEMPTS" ]; do
    r=$((r + 1))
    [ "$QUIET_MAX" -gt 0 ] && quiet_gate "$r"
    read -r T0 _ S0 _ < <(cpu_ticks)
    order=()
    for i in 0 1 2; do order+=("${SERVERS[$(((r - 1 + i) % 3))]}"); done
    echo "# round $r start $(date -u +%T) (order: ${order[*]}; load average $(loadavg))"
    for s in "${order[@]}"; do
        case $s in redis) si=0 ;; uring) si=1 ;; epoll) si=2 ;; esac
        port=$((PORT + 10 * r + si))
        start_server "$r" "$s" "$port" || continue
        for c in $CONNS; do
            for p in $PIPES; do
                for t in $TESTS; do load "$r" "$s" "$port" "$c" "$p" "$t"; done
            done
        done
        stop_server "$r" "$s" "$port"
    done
    read -r T1 _ S1 _ < <(cpu_ticks)
    st=$(awk -v t=$((T1 - T0)) -v s=$((S1 - S0)) 'BEGIN { printf "%.1f%%", t ? 100 * s / t : 0 }')
    STEALS+=("$st")
    worst=$(awk -v r="$r" 'BEGIN { m = 0 } $1 == r && $3 == "other_cpu_pct" && $4 > m { m = $4 }
                           END { print m }' "$RES")
    if awk -v m="$worst" -v x="$MAX_OTHER" 'BEGIN { exit !(m <= x) }'; then
        CLEAN=$((CLEAN + 1))
        echo "# round $r end $(date -u +%T), cpu steal $st, load average $(loadavg), other processes <= $worst% (clean round $CLEAN of $R)"
    else
        echo "# round $r end $(date -u +%T), cpu steal $st, load average $(loadavg), other processes up to $worst% > $MAX_OTHER%: left out, one more round"
    fi
done
[ "$CLEAN" -ge "$R" ] || fail "$r" "only $CLEAN clean rounds of $R wanted after $r attempts (ATTEMPTS=$ATTEMPTS, MAX_OTHER=$MAX_OTHER)"
read -r TT1 _ TS1 _ < <(cpu_ticks)
STEAL_ALL=$(awk -v t=$((TT1 - TT0)) -v s=$((TS1 - TS0)) 'BEGIN { printf "%.1f%%", t ? 100 * s / t : 0 }')
echo "# done $(date -u +%FT%TZ); cpu steal over the run $STEAL_ALL (per round: ${STEALS[*]}); load average $(loadavg)"

python3 - "$RES" "$CONNS" "$PIPES" "$TESTS" "$MAX_OTHER" "$MODE" <<'EOF' | tables_as_csv "$OUT/summary"
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
conns, pipes, tests = sys.argv[2].split(), sys.argv[3].split(), sys.argv[4].split()
max_other = float(sys.argv[5])
pinned = sys.argv[6] == "pinned"
CPU_GOAL = 0.8  # issue 21 goal 1: server CPU per request <= 0.8x redis's
busy = {}  # round -> worst other_cpu_pct of its loads
unsupported = set(cfg for r, cfg, metric, v in rows if metric == "unsupported")
for r, cfg, metric, v in rows:
    if metric == "other_cpu_pct":
        busy[int(r)] = max(busy.get(int(r), 0.0), float(v))
dropped = sorted(r for r in busy if busy[r] > max_other)
print()
if dropped:
    print("# left out (other processes used > %g%% of the CPUs during a load): %s" % (max_other,
          ", ".join("round %d (%.1f%%)" % (r, busy[r]) for r in dropped)))
print("# rounds in the summary: %s" % (" ".join(str(r) for r in sorted(busy) if r not in dropped) or "none"))
val = {}   # (config, metric) -> {round: value}
for r, cfg, metric, v in rows:
    if int(r) not in dropped:
        val.setdefault((cfg, metric), {})[int(r)] = float(v)
def get(cfg, metric):
    return val.get((cfg, metric), {})
def per_req(cfg, metric):  # CPU us per request, per round
    cpu, n = get(cfg, metric), get(cfg, "requests")
    return {r: cpu[r] * 1e6 / n[r] for r in cpu if r in n and n[r] > 0}
def med(xs):
    xs = list(xs)
    return st.median(xs) if xs else None
def mm(xs, f, k=None):
    xs = list(xs)
    if not xs:
        return "unsupported" if k in unsupported else "(missing)"
    return "%s (%s..%s)" % (f % st.median(xs), f % min(xs), f % max(xs))
names = {"redis": "redis-server", "uring": "weft io_uring", "epoll": "weft epoll"}
configs = [(c, p, t) for c in conns for p in pipes for t in tests]
def key(s, c, p, t):
    return "%s.c%s.p%s.%s" % (s, c, p, t)
def label(c, p, t):
    return "c%s P%s %s" % (c, p, t)

print("| config | server | req/s median (min..max) | p50 us | p99 us | p999 us | server CPU us/req | client CPU us/req | other CPU % | rounds |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for c, p, t in configs:
    for s in ("redis", "uring", "epoll"):
        k = key(s, c, p, t)
        rps = get(k, "rps")
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |" % (label(c, p, t), names[s],
              mm(rps.values(), "%.0f", k), mm(get(k, "p50_us").values(), "%.0f"),
              mm(get(k, "p99_us").values(), "%.0f"), mm(get(k, "p999_us").values(), "%.0f"),
              mm(per_req(k, "srv_cpu_s").values(), "%.2f"),
              mm(per_req(k, "cli_cpu_s").values(), "%.2f"), mm(get(k, "other_cpu_pct").values(), "%.1f"),
              len(rps)))
print()
print("| weft/redis, per round | backend | req/s ratio median (min..max) | p50 ratio | p99 ratio | p999 ratio | CPU/req ratio | goal | met in rounds | met (median) | CPU/req <= %.1fx |" % CPU_GOAL)
print("|---|---|---|---|---|---|---|---|---|---|---|")
bad = 0
ratios = {}  # (s, c, p, t) -> (rps ratio median, p99 ratio median)
nmet = ntot = 0
for c, p, t in configs:
    bound = (1.0 if p == "1" else 1.2) if pinned else (1.2 if c == "1000" else 1.0)
    for s in ("uring", "epoll"):
        w, g = key(s, c, p, t), key("redis", c, p, t)
        ratio = {}
        for m in ("rps", "p50_us", "p99_us", "p999_us"):
            a, b = get(w, m), get(g, m)
            ratio[m] = {r: a[r] / b[r] for r in a if r in b and b[r] > 0}
        a, b = per_req(w, "srv_cpu_s"), per_req(g, "srv_cpu_s")
        ratio["cpu"] = {r: a[r] / b[r] for r in a if r in b and b[r] > 0}
        rounds = sorted(set(ratio["rps"]) & set(ratio["p99_us"]))
        goal = "req/s >= %.1fx, p99 <= redis" % bound
        ntot += 1
        if not rounds:
            why = "unsupported" if w in unsupported or g in unsupported else "(missing)"
            print("| %s | %s | %s | | | | | %s | | | |" % (label(c, p, t), names[s], why, goal))
            if why == "(missing)":
                bad += 1
            continue
        ok = [ratio["rps"][r] >= bound and ratio["p99_us"][r] <= 1.0 for r in rounds]
        mr, mp = st.median(ratio["rps"].values()), st.median(ratio["p99_us"].values())
        ratios[(s, c, p, t)] = (mr, mp)
        met = ("yes" if mr >= bound and mp <= 1.0 else
               "NO (req/s)" if mp <= 1.0 else "NO (p99)" if mr >= bound else "NO (req/s, p99)")
        nmet += met == "yes"
        cpu_met = "-" if not ratio["cpu"] else "yes" if st.median(ratio["cpu"].values()) <= CPU_GOAL else "NO"
        print("| %s | %s | %s | %s | %s | %s | %s | %s | %d of %d | %s | %s |" % (label(c, p, t), names[s],
              mm(ratio["rps"].values(), "%.2f"), mm(ratio["p50_us"].values(), "%.2f"),
              mm(ratio["p99_us"].values(), "%.2f"), mm(ratio["p999_us"].values(), "%.2f"),
              mm(ratio["cpu"].values(), "%.2f"), goal, sum(ok), len(rounds), met, cpu_met))
print()
nsup = sum(1 for c, p, t in configs for s in ("uring", "epoll")
           if key(s, c, p, t) in unsupported or key("redis", c, p, t) in unsupported)
print("# goals met (on the medians of the per-round ratios): %d of %d rows (%d rows unsupported)" % (nmet, ntot, nsup))
print()
# Compact: medians, and the per-round ratio medians in brackets.
def f0(x):
    return "-" if x is None else "%.0f" % x
def f2(x):
    return "-" if x is None else "%.2f" % x
print("| config | req/s redis | io_uring [x] | epoll [x] | p50 us redis / uring / epoll | p99 us redis | io_uring [x] | epoll [x] | p999 us redis / uring / epoll | server CPU us/req redis / uring / epoll | client us/req (all) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for c, p, t in configs:
    k = {s: key(s, c, p, t) for s in ("redis", "uring", "epoll")}
    rr = {s: ratios.get((s, c, p, t), (None, None)) for s in ("uring", "epoll")}
    print("| %s | %s | %s [%s] | %s [%s] | %s / %s / %s | %s | %s [%s] | %s [%s] | %s / %s / %s | %s / %s / %s | %s |" % (
        label(c, p, t), f0(med(get(k["redis"], "rps").values())),
        f0(med(get(k["uring"], "rps").values())), f2(rr["uring"][0]),
        f0(med(get(k["epoll"], "rps").values())), f2(rr["epoll"][0]),
        *[f0(med(get(k[s], "p50_us").values())) for s in ("redis", "uring", "epoll")],
        f0(med(get(k["redis"], "p99_us").values())),
        f0(med(get(k["uring"], "p99_us").values())), f2(rr["uring"][1]),
        f0(med(get(k["epoll"], "p99_us").values())), f2(rr["epoll"][1]),
        *[f0(med(get(k[s], "p999_us").values())) for s in ("redis", "uring", "epoll")],
        *[f2(med(per_req(k[s], "srv_cpu_s").values())) for s in ("redis", "uring", "epoll")],
        f2(med([x for s in ("redis", "uring", "epoll") for x in per_req(k[s], "cli_cpu_s").values()]))))
sys.exit(1 if bad else 0)
EOF
py=${PIPESTATUS[0]}  # the summary's status, not tables_as_csv's
rm -f "$OUT/load.tmp" "$OUT/times.tmp"
echo "# raw outputs in $OUT"
[ $FAILS -eq 0 ] && [ $py -eq 0 ] || { echo "# $FAILS failure(s); see $OUT/failures.txt" >&2; exit 1; }
exit 0
