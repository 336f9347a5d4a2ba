#!/usr/bin/env bash
# Paired comparison of two weft builds (say, a change against the commit it
# started from): the micro benchmarks yield, spawn+join, skynet and channel
# ping-pong, then weft-echo at -c 50 (the peers' Go `echoload`) and weft-kv
# SET and GET at -c 50 (redis-benchmark), each under io_uring and epoll.
#
# Rounds interleave the builds and alternate which goes first (odd rounds
# A first, even rounds B first), so slow drift of a shared machine falls on
# both. Every figure is one run's median of its reps (the bench programs'
# own convention); the summary gives per metric the median over rounds of
# A and of B, and the median of the per-round ratios B/A (for times <1 is
# better; for req/s >1 is better).
#
#   bench/compare_builds.sh A B [R]     # R rounds, default 5
#   A=../x-base/build-bench B=build-bench bench/compare_builds.sh
#
# A and B are build directories configured with benches and examples
# (RelWithDebInfo): they hold bench/weft-bench-{yield,spawn,skynet,chan},
# examples/weft-echo and examples/weft-kv/weft-kv.
# Environment: P (peers dir, default ../shared/peers from the repository
# root: see bench/lib.sh; for echoload), PORT (first port, default 19700;
# the servers use PORT..PORT+3), ONLY (a space-separated subset of: yield
# spawn skynet chan echo kv; default all), DUR (echoload's measured time,
# default 5s), KV_N (SET and GET requests per run, default 200000 each), OUT (dir for the
# raw outputs, default a fresh /tmp/compare_builds.XXXX).
# Exit status: 0 if every run succeeded, 1 if one failed, 2 on a usage error.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
A=${1:-${A:-}}
B=${2:-${B:-}}
R=${3:-${R:-5}}
if [ -z "$A" ] || [ -z "$B" ]; then echo "usage: $0 A_BUILD_DIR B_BUILD_DIR [rounds]" >&2; exit 2; fi
[[ $R =~ ^[1-9][0-9]*$ ]] || { echo "rounds: want a number >= 1, got '$R'" >&2; exit 2; }
. "$HERE/lib.sh"
P=${P:-$(peers_dir "$REPO")}
PORT=${PORT:-19700}
ONLY=${ONLY:-yield spawn skynet chan echo kv}
DUR=${DUR:-5s}
KV_N=${KV_N:-200000}
OUT=${OUT:-$(mktemp -d /tmp/compare_builds.XXXX)}
mkdir -p "$OUT"
RES=$OUT/results.txt # "round build metric value"
: >"$RES"
FAILS=0
SPID=

for d in "$A" "$B"; do
    for b in bench/weft-bench-yield bench/weft-bench-spawn bench/weft-bench-skynet \
             bench/weft-bench-chan examples/weft-echo examples/weft-kv/weft-kv; do
        [ -x "$d/$b" ] || { echo "missing $d/$b" >&2; exit 2; }
    done
done
case " $ONLY " in *" echo "*)
    [ -x "$P/go/bin/echoload" ] || { echo "missing $P/go/bin/echoload ($P/run_all.sh build)" >&2; exit 2; } ;;
esac
case " $ONLY " in *" kv "*)
    command -v redis-benchmark >/dev/null || { echo "redis-benchmark is needed (redis-tools)" >&2; exit 2; } ;;
esac

cleanup() { kill_server; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# record ROUND BUILD: the "name value unit" lines on stdin become results.
record() { awk -v r="$1" -v b="$2" 'NF == 3 && $1 !~ /^#/ { print r, b, $1, $2 }' >>"$RES"; }

# micro ROUND BUILD DIR: the micro benchmarks of one build.
micro() {
    local r=$1 name=$2 d=$3 log=$OUT/micro.log
    run() {
        echo "## round $r $name $*" >>"$log"
        "$@" 2>>"$log" | tee -a "$log" | record "$r" "$name"
        [ "${PIPESTATUS[0]}" -eq 0 ] || fail "$r" "$name: $*"
    }
    case " $ONLY " in *" yield "*) run "$d/bench/weft-bench-yield" reps=3 ;; esac
    case " $ONLY " in *" spawn "*) run "$d/bench/weft-bench-spawn" reps=3 ;; esac
    case " $ONLY " in *" skynet "*) run "$d/bench/weft-bench-skynet" reps=3 ;; esac
    case " $ONLY " in *" chan "*) run "$d/bench/weft-bench-chan" reps=3 only=pp1,pp2 ;; esac
}


# serve ROUND NAME PORT CMD...: starts a server, waits until it listens.
serve() {
    local r=$1 name=$2 port=$3
    shift 3
    if listening "$port"; then fail "$r" "port $port is taken"; return 1; fi
    "$@" >>"$OUT/server.log" 2>&1 &
    SPID=$!
    for _ in $(seq 100); do
        listening "$port" && return 0
        kill -0 "$SPID" 2>/dev/null || break
        sleep 0.1
    done
    fail "$r" "$name did not start on port $port"
    kill_server
    return 1
}

# servers ROUND BUILD DIR: weft-echo and weft-kv of one build, both backends.
servers() {
    local r=$1 name=$2 d=$3 io k port out
    for io in io_uring epoll; do
        if [ "$io" = io_uring ]; then k=0; else k=1; fi
        case " $ONLY " in *" echo "*)
            port=$((PORT + k))
            if serve "$r" "$name echo $io" "$port" "$d/examples/weft-echo" --port "$port" --workers 2 --io "$io"; then
                out=$(env -u GOMAXPROCS "$P/go/bin/echoload" -addr 127.0.0.1:"$port" -c 50 -d "$DUR" -name x 2>>"$OUT/server.log")
                printf '## round %s %s echo %s\n%s\n' "$r" "$name" "$io" "$out" >>"$OUT/load.log"
                printf '%s\n' "$out" | awk -v io="$io" '$1 == "x_rps" { print "echo_c50_rps_" io, $2, "req/s" }' | record "$r" "$name"
                kill_server
            fi ;;
        esac
        case " $ONLY " in *" kv "*)
            port=$((PORT + 2 + k))
            if serve "$r" "$name kv $io" "$port" "$d/examples/weft-kv/weft-kv" --port "$port" --workers 2 --io "$io"; then
                redis-benchmark -p "$port" -t set -c 50 -n 100000 -r 100000 -q >/dev/null 2>&1
                out=$(redis-benchmark -p "$port" --csv -t set,get -c 50 -n "$KV_N" -r 100000 2>>"$OUT/server.log")
                printf '## round %s %s kv %s\n%s\n' "$r" "$name" "$io" "$out" >>"$OUT/load.log"
                printf '%s\n' "$out" | awk -F'","' -v io="$io" '
                    /^"GET"/ { print "kv_get_c50_rps_" io, $2, "req/s" }
                    /^"SET"/ { print "kv_set_c50_rps_" io, $2, "req/s" }' | record "$r" "$name"
                kill_server
            fi ;;
        esac
    done
}

echo "# compare_builds: $(date -u +%FT%TZ) R=$R A=$A B=$B only='$ONLY' out=$OUT"
echo "# $(uname -srm) cpus=$(nproc); load average $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$R"); do
    if [ $((r % 2)) -eq 1 ]; then order="A B"; else order="B A"; fi
    echo "# round $r ($order) $(date -u +%T), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    for x in $order; do
        if [ "$x" = A ]; then micro "$r" A "$A"; else micro "$r" B "$B"; fi
    done
    for x in $order; do
        if [ "$x" = A ]; then servers "$r" A "$A"; else servers "$r" B "$B"; fi
    done
done

python3 - "$RES" <<'EOF' | tables_as_csv "$OUT/summary"
import statistics, sys
from collections import defaultdict
vals = defaultdict(dict)  # metric -> round -> {build: value}
for line in open(sys.argv[1]):
    r, b, m, v = line.split()
    vals[m].setdefault(r, {})[b] = float(v)
print(f"{'metric':32} {'A median':>12} {'B median':>12} {'B/A (median of rounds)':>24}  rounds")
for m in sorted(vals):
    rounds = vals[m]
    a = [x["A"] for x in rounds.values() if "A" in x]
    b = [x["B"] for x in rounds.values() if "B" in x]
    ratios = [x["B"] / x["A"] for x in rounds.values() if "A" in x and "B" in x and x["A"] > 0]
    if not ratios:
        continue
    print(f"{m:32} {statistics.median(a):12.3f} {statistics.median(b):12.3f} "
          f"{statistics.median(ratios):24.3f}  {len(ratios)} "
          f"(ratios {min(ratios):.3f}..{max(ratios):.3f})")
EOF
echo "# raw: $RES, logs in $OUT"
[ "$FAILS" -eq 0 ] || exit 1
