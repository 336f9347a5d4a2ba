#!/usr/bin/env bash
# Paired comparison of weft-http-hello (examples/http-hello) with nginx
# serving the same "Hello, World!" (bench/http/nginx.conf: `return 200`,
# access_log off, keepalive_requests 10^8), both driven by wrk over HTTP/1.1
# keep-alive connections. Client and server share the machine's cores (2
# here), as in bench/compare_echo.sh.
#
# Each round starts, each on a port of its own and one at a time, nginx with
# 2 worker processes (nginx2) and with 1 (nginx1), `weft-http-hello --io
# io_uring` (uring) and `--io epoll` (epoll), both with --workers 2. The
# start of the order rotates with the round. Against each server: for every
# -c in CONNS, a WARMUP wrk run (discarded), then `wrk -t THREADS -c C -d DUR
# --latency`. Before each round the script waits (up to QUIET_MAX s) until no
# compiler runs and the CPUs are < 15 % busy over 1 s. Recorded per load:
# req/s, latency p50 and p99 (wrk's --latency distribution), the server's CPU
# time per request (nginx: master and workers), wrk's CPU time, the share of
# the CPUs other processes used meanwhile, and the load average before the
# round. A load during which other processes used more than MAX_OTHER % of
# the CPUs is run again after a quiet gate (up to LOAD_TRIES runs); a round
# still left with such a load is left out of the summary and another round
# is run, up to ATTEMPTS rounds in all. At the end: per configuration the
# median (min..max) over the clean rounds, then the weft/nginx ratios taken
# within each round (median of the per-round ratios).
#
#   bench/compare_http.sh [R]      # R clean rounds, default 3 (~2 min a round)
#   H=build/examples/weft-http-hello OUT=/tmp/cmp_http bench/compare_http.sh 5
#
# Environment: H (the weft-http-hello binary, default
# <repo>/build/examples/weft-http-hello), NGINX (default: nginx on PATH),
# SERVERS (default "nginx2 nginx1 uring epoll"), WORKERS (weft workers,
# default 2), THREADS (wrk -t, default 2), CONNS (default "50 1000"), DUR
# (default 10s), WARMUP (default 1s, 0 = none), PORT (first port, default
# 18600; round r, server s uses PORT + 10*r + s), OUT (raw outputs, default a
# fresh /tmp/compare_http.XXXX), QUIET_MAX (default 120, 0 = don't wait),
# MAX_OTHER (default 10 (%); 100 keeps every run), LOAD_TRIES (default 2),
# ATTEMPTS (default 2*R).
# Exit status: 0 when every load ran without errors, every server behaved
# and R rounds were clean; 1 otherwise (see OUT/failures.txt); 2 on a usage
# or setup error.
#
# Build first:
#   cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=ON
#   ninja -C build weft-http-hello
#   apt-get install -y wrk nginx-light
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
R=${1:-${R:-3}}
H=${H:-$REPO/build/examples/weft-http-hello}
NGINX=${NGINX:-$(command -v nginx)}
read -r -a SERVERS <<<"${SERVERS:-nginx2 nginx1 uring epoll}"
WORKERS=${WORKERS:-2}
THREADS=${THREADS:-2}
CONNS=${CONNS:-50 1000}
DUR=${DUR:-10s}
WARMUP=${WARMUP:-1s}
PORT=${PORT:-18600}
QUIET_MAX=${QUIET_MAX:-120}
MAX_OTHER=${MAX_OTHER:-10}
LOAD_TRIES=${LOAD_TRIES:-2}

[[ $R =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [rounds >= 1]" >&2; exit 2; }
ATTEMPTS=${ATTEMPTS:-$((2 * R))}
[[ $ATTEMPTS =~ ^[1-9][0-9]*$ ]] && [ "$ATTEMPTS" -ge "$R" ] || { echo "ATTEMPTS=$ATTEMPTS: want >= R=$R" >&2; exit 2; }
[[ $LOAD_TRIES =~ ^[1-9][0-9]*$ ]] || { echo "LOAD_TRIES=$LOAD_TRIES: want >= 1" >&2; exit 2; }
[[ $PORT =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1024 ] && [ $((PORT + 10 * ATTEMPTS + 9)) -le 65535 ] ||
    { echo "PORT=$PORT: want 1024..$((65535 - 10 * ATTEMPTS - 9))" >&2; exit 2; }
for s in "${SERVERS[@]}"; do
    case $s in nginx1 | nginx2 | uring | epoll) ;; *) echo "SERVERS: unknown '$s'" >&2; exit 2 ;; esac
done

missing=0
[ -x "$H" ] || { echo "missing $H; build it with:
  cmake -S $REPO -B $REPO/build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo && ninja -C $REPO/build weft-http-hello" >&2; missing=1; }
[ -n "$NGINX" ] && [ -x "$NGINX" ] || { echo "nginx not found: apt-get install -y nginx-light" >&2; missing=1; }
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; missing=1; }
command -v python3 >/dev/null || { echo "python3 is needed for the summary" >&2; missing=1; }
command -v ss >/dev/null || { echo "ss (iproute2) is needed to check ports" >&2; missing=1; }
[ $missing -eq 0 ] || exit 2

# Every connection costs one fd in wrk and one in the server.
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

OUT=${OUT:-$(mktemp -d /tmp/compare_http.XXXX)}
mkdir -p "$OUT"
RES=$OUT/results.txt # "round config metric value", config = server.cN
: >"$RES"
: >"$OUT/failures.txt"
FAILS=0
SPID=

# The pids of SPID and its children (nginx: the master and its workers).
server_pids() { [ -n "$SPID" ] && echo "$SPID" $(ps -o pid= --ppid "$SPID" 2>/dev/null); }

cleanup() { # only the server this script started, by its pid (and its children)
    if [ -n "$SPID" ]; then
        local kids
        kids=$(ps -o pid= --ppid "$SPID" 2>/dev/null)
        kill "$SPID" 2>/dev/null
        wait "$SPID" 2>/dev/null
        # nginx workers end with their master; make sure of it.
        for p in $kids; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
        SPID=
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM


# total, idle+iowait, steal and irq+softirq jiffies of all CPUs
cpu_ticks() { awk '/^cpu /{ print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6, $9, $7+$8 }' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)
# srv_cpu: user+system CPU ticks of the server's processes (all threads).
srv_cpu() {
    local t=0 p v
    for p in $(server_pids); do
        v=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        t=$((t + v))
    done
    echo "$t"
}

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
    echo "# round $1: machine not quiet after ${QUIET_MAX}s, running anyway"
}


# start_server ROUND NAME PORT: starts the server, sets SPID; non-zero on failure.
start_server() {
    local round=$1 name=$2 port=$3 log=$OUT/server-$2.log i
    for i in $(seq 50); do listening "$port" || break; sleep 0.1; done
    if listening "$port"; then fail "$round" "port $port is already in use ($name)"; return 1; fi
    echo "## round $round $name port $port $(date -u +%T)" >>"$log"
    case $name in
        nginx*)
            local prefix=$OUT/nginx-r$round-$name
            mkdir -p "$prefix/tmp"
            sed "s/@PORT@/$port/" "$HERE/http/nginx.conf" >"$prefix/nginx.conf"
            "$NGINX" -p "$prefix" -c "$prefix/nginx.conf" -g "worker_processes ${name#nginx};" >>"$log" 2>&1 &
            ;;
        uring) "$H" --port "$port" --workers "$WORKERS" --io io_uring >>"$log" 2>&1 & ;;
        epoll) "$H" --port "$port" --workers "$WORKERS" --io epoll >>"$log" 2>&1 & ;;
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
    sleep 0.2
    case $name in
        nginx*)
            local n
            n=$(ps -o pid= --ppid "$SPID" | wc -l)
            [ "$n" -eq "${name#nginx}" ] || { fail "$round" "$name: $n worker processes"; cleanup; return 1; }
            ;;
        *)
            local want=epoll
            [ "$name" = uring ] && want=io_uring
            if ! tail -n 1 "$log" | grep -q "$WORKERS workers, $want)"; then
                fail "$round" "$name: weft-http-hello did not report '$WORKERS workers, $want': $(tail -n 1 "$log")"
                cleanup
                return 1
            fi
            ;;
    esac
    return 0
}

# stop_server ROUND NAME: SIGTERM, up to 5 s, then SIGKILL.
stop_server() {
    local i rc kids
    [ -n "$SPID" ] || return 0
    kids=$(ps -o pid= --ppid "$SPID" 2>/dev/null)
    kill -TERM "$SPID" 2>/dev/null
    for i in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$SPID" 2>/dev/null; then
        fail "$1" "$2 did not exit within 5 s of SIGTERM, killed"
        kill -KILL "$SPID" 2>/dev/null
        for p in $kids; do kill -KILL "$p" 2>/dev/null; done
    fi
    wait "$SPID" 2>/dev/null
    rc=$?
    [ $rc -eq 0 ] || [ $rc -eq 143 ] || fail "$1" "$2 exited with status $rc"
    SPID=
}

# load_once ROUND NAME PORT C FILE: one measured wrk run; writes its
# "round config metric value" lines to FILE.
load_once() {
    local round=$1 name=$2 port=$3 c=$4 file=$5 out rc c0 c1 t0 t1 i0 i1 s0 s1 q0 q1 cli
    : >"$file"
    local url=http://127.0.0.1:$port/
    if [ "$WARMUP" != 0 ]; then
        timeout -k 5 60 wrk -t "$THREADS" -c "$c" -d "$WARMUP" "$url" >/dev/null 2>>"$OUT/stderr.txt"
    fi
    c0=$(srv_cpu); read -r t0 i0 s0 q0 < <(cpu_ticks)
    # `times` after wrk: its CPU time (as a child of that bash) on fd 3.
    out=$(timeout -k 5 120 bash -c '"$@"; rc=$?; times >&3; exit $rc' wrk \
        wrk -t "$THREADS" -c "$c" -d "$DUR" --latency --timeout 10s "$url" \
        3>"$OUT/times.tmp" 2>>"$OUT/stderr.txt")
    rc=$?
    c1=$(srv_cpu); read -r t1 i1 s1 q1 < <(cpu_ticks)
    cli=$(awk 'NR == 2 { split($1, u, /[ms]/); split($2, s, /[ms]/);
                         print u[1] * 60 + u[2] + s[1] * 60 + s[2] }' "$OUT/times.tmp")
    printf '## round %s %s c%s %s\n%s\n' "$round" "$name" "$c" "$(date -u +%T)" "$out" >>"$OUT/wrk.log"
    if [ $rc -ne 0 ]; then
        fail "$round" "wrk -c $c against $name rc=$rc (stderr in $OUT/stderr.txt)"
        return 1
    fi
    if ! kill -0 "$SPID" 2>/dev/null; then
        fail "$round" "$name died during the -c $c load"
        return 1
    fi
    # wrk's figures: requests, req/s, p50/p99 in us, errors.
    printf '%s\n' "$out" | awk -v r="$round" -v cfg="$name.c$c" '
        function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000;
                         if (v ~ /s$/) return v * 1000000; return v * 60000000 }
        $1 == "50%" { printf "%s %s p50_us %.1f\n", r, cfg, us($2) }
        $1 == "99%" { printf "%s %s p99_us %.1f\n", r, cfg, us($2) }
        $1 == "Requests/sec:" { printf "%s %s rps %s\n", r, cfg, $2 }
        $2 == "requests" && $3 == "in" { printf "%s %s requests %s\n", r, cfg, $1 }
        /Socket errors:/ { gsub(/,/, ""); e = $4 + $6 + $8 + $10 }
        /Non-2xx or 3xx responses:/ { e += $5 }
        END { printf "%s %s errors %d\n", r, cfg, e }' >>"$file"
    awk -v r="$round" -v cfg="$name.c$c" -v d=$((c1 - c0)) -v w=$((t1 - t0)) \
        -v b=$((t1 - t0 - (i1 - i0) - (s1 - s0) - (q1 - q0))) \
        -v cli="${cli:-0}" -v hz="$CLK_TCK" -v n="$(nproc)" -v la="$LOADAVG" 'BEGIN {
        printf "%s %s srv_cpu_s %.3f\n%s %s cli_cpu_s %.3f\n%s %s wall_s %.3f\n", r, cfg, d / hz,
            r, cfg, cli, r, cfg, w / hz / n
        o = (b / hz - d / hz - cli) / (w / hz); if (o < 0) o = 0
        printf "%s %s other_cpu_pct %.1f\n%s %s loadavg %s\n", r, cfg, 100 * o, r, cfg, la }' >>"$file"
    local errors
    errors=$(awk '$3 == "errors" { print $4 }' "$file")
    [ "${errors:-0}" -eq 0 ] || fail "$round" "wrk -c $c against $name: $errors errors (see $OUT/wrk.log)"
    awk '{ v[$3] = $4 } END { printf "round %s %-12s %10.0f req/s  p50 %8.1f us  p99 %8.1f us  errors %d  cpu: server %.2f s (%.2f us/req), wrk %.2f s, other %.1f%%",
        $1, $2, v["rps"], v["p50_us"], v["p99_us"], v["errors"], v["srv_cpu_s"],
        v["requests"] ? 1e6 * v["srv_cpu_s"] / v["requests"] : 0, v["cli_cpu_s"], v["other_cpu_pct"] }' "$file"
}

# load ROUND NAME PORT C: load_once, run again (after a quiet gate) while
# other processes took more than MAX_OTHER % of the CPUs, up to LOAD_TRIES
# runs. The last run's figures count.
load() {
    local try other
    for try in $(seq "$LOAD_TRIES"); do
        load_once "$@" "$OUT/load.tmp" || return 1
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

HASH=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null)
DIRTY=$(git -C "$REPO" status --porcelain -- src include examples CMakeLists.txt 2>/dev/null | grep -q . && echo '+dirty')
echo "# compare_http: $(date -u +%FT%TZ) R=$R (clean rounds; other <= $MAX_OTHER%, at most $ATTEMPTS rounds) servers='${SERVERS[*]}' weft workers=$WORKERS wrk -t$THREADS conns='$CONNS' dur=$DUR warmup=$WARMUP out=$OUT"
echo "# $(uname -srm) cpus=$(nproc); $("$NGINX" -v 2>&1); $(wrk -v 2>&1 | head -n 1 | sed 's/ Copyright.*//'); ulimit -n $(ulimit -Sn); weft commit $HASH$DIRTY; weft-http-hello built $(date -u -r "$H" +%FT%TZ) md5 $(md5sum <"$H" | cut -c1-12)$(env | grep -q '^WEFT_' && echo "; env: $(env | grep '^WEFT_' | tr '\n' ' ')")"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
read -r TT0 _ TS0 _ < <(cpu_ticks)
CLEAN=0
r=0
NS=${#SERVERS[@]}
while [ "$CLEAN" -lt "$R" ] && [ "$r" -lt "$ATTEMPTS" ]; do
    r=$((r + 1))
    [ "$QUIET_MAX" -gt 0 ] && quiet_gate "$r"
    LOADAVG=$(cut -d' ' -f1 /proc/loadavg)
    order=()
    for i in $(seq 0 $((NS - 1))); do order+=("${SERVERS[$(((r - 1 + i) % NS))]}"); done
    echo "# round $r start $(date -u +%T), load average $(cut -d' ' -f1-3 /proc/loadavg) (order: ${order[*]})"
    for s in "${order[@]}"; do
        case $s in nginx2) si=0 ;; nginx1) si=1 ;; uring) si=2 ;; epoll) si=3 ;; esac
        port=$((PORT + 10 * r + si))
        start_server "$r" "$s" "$port" || continue
        for c in $CONNS; do load "$r" "$s" "$port" "$c"; done
        stop_server "$r" "$s"
    done
    worst=$(awk -v r="$r" 'BEGIN { m = 0 } $1 == r && $3 == "other_cpu_pct" && $4 > m { m = $4 }
                           END { print m }' "$RES")
    if awk -v m="$worst" -v x="$MAX_OTHER" 'BEGIN { exit !(m <= x) }'; then
        CLEAN=$((CLEAN + 1))
        echo "# round $r end $(date -u +%T), load average $(cut -d' ' -f1-3 /proc/loadavg), other processes <= $worst% (clean round $CLEAN of $R)"
    else
        echo "# round $r end $(date -u +%T), load average $(cut -d' ' -f1-3 /proc/loadavg), other processes up to $worst% > $MAX_OTHER%: left out, one more round"
    fi
done
[ "$CLEAN" -ge "$R" ] || fail "$r" "only $CLEAN clean rounds of $R wanted after $r attempts (ATTEMPTS=$ATTEMPTS, MAX_OTHER=$MAX_OTHER)"
read -r TT1 _ TS1 _ < <(cpu_ticks)
echo "# done $(date -u +%FT%TZ); load average $(cut -d' ' -f1-3 /proc/loadavg); cpu steal over the run $(awk -v t=$((TT1 - TT0)) -v s=$((TS1 - TS0)) 'BEGIN { printf "%.1f%%", t ? 100 * s / t : 0 }')"

python3 - "$RES" "$CONNS" "$MAX_OTHER" "${SERVERS[*]}" <<'EOF' | tables_as_csv "$OUT/summary"
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
conns = sys.argv[2].split()
max_other = float(sys.argv[3])
servers = sys.argv[4].split()
busy = {}
for r, cfg, metric, v in rows:
    if metric == "other_cpu_pct":
        busy[int(r)] = max(busy.get(int(r), 0.0), float(v))
dropped = sorted(r for r in busy if busy[r] > max_other)
rounds = sorted(r for r in busy if r not in dropped)
print()
if dropped:
    print("# left out (other processes used > %g%% of the CPUs during a load): %s" % (max_other,
          ", ".join("round %d (%.1f%%)" % (r, busy[r]) for r in dropped)))
print("# rounds in the summary: %s" % (" ".join(map(str, rounds)) or "none"))
val = {}  # (server, c) -> metric -> round -> value
for r, cfg, metric, v in rows:
    if int(r) not in rounds:
        continue
    s, c = cfg.rsplit(".c", 1)
    val.setdefault((s, c), {}).setdefault(metric, {})[int(r)] = float(v)
names = {"nginx2": "nginx 2 workers", "nginx1": "nginx 1 worker",
         "uring": "weft io_uring", "epoll": "weft epoll"}
def mm(xs, fmt):
    xs = list(xs)
    if not xs:
        return "-"
    return (fmt + " (" + fmt + ".." + fmt + ")") % (st.median(xs), min(xs), max(xs))
print()
print("| config | req/s median (min..max) | p50 us | p99 us | server CPU us/req | wrk CPU s | other CPU % | load avg |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for c in conns:
    for s in servers:
        m = val.get((s, c))
        if not m:
            continue
        cpu = [1e6 * m["srv_cpu_s"][r] / m["requests"][r] for r in m.get("requests", {})
               if m["requests"][r] > 0 and r in m.get("srv_cpu_s", {})]
        print("| %s c%s | %s | %s | %s | %s | %s | %s | %s |" % (names[s], c,
              mm(m.get("rps", {}).values(), "%.0f"), mm(m.get("p50_us", {}).values(), "%.0f"),
              mm(m.get("p99_us", {}).values(), "%.0f"), "%.2f" % st.median(cpu) if cpu else "-",
              "%.1f" % st.median(m["cli_cpu_s"].values()) if "cli_cpu_s" in m else "-",
              "%.1f" % st.median(m["other_cpu_pct"].values()) if "other_cpu_pct" in m else "-",
              mm(m.get("loadavg", {}).values(), "%.2f")))
print()
print("| weft / nginx, per-round ratios, median (min..max) | req/s | p50 | p99 | rounds |")
print("|---|---|---|---|---:|")
for c in conns:
    for w in ("uring", "epoll"):
        for n in ("nginx2", "nginx1"):
            a, b = val.get((w, c)), val.get((n, c))
            if not a or not b:
                continue
            rs = sorted(set(a.get("rps", {})) & set(b.get("rps", {})))
            if not rs:
                continue
            ratio = lambda k: [a[k][r] / b[k][r] for r in rs if b[k].get(r)]
            print("| %s / %s c%s | %s | %s | %s | %d |" % (names[w], names[n], c,
                  mm(ratio("rps"), "%.3f"), mm(ratio("p50_us"), "%.2f"), mm(ratio("p99_us"), "%.2f"),
                  len(rs)))
EOF
rm -f "$OUT/load.tmp" "$OUT/times.tmp"
echo "# raw outputs in $OUT"
[ $FAILS -eq 0 ] || { echo "# $FAILS failure(s); see $OUT/failures.txt" >&2; exit 1; }
exit 0
