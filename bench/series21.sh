#!/usr/bin/env bash
# Issue 21's measuring ground in one command: the paired, interleaved series
# of weft-kv against redis-server (bench/compare_kv.sh) and of weft-echo
# against Go's echo server (bench/compare_echo.sh), each in the shared mode
# (client and server on the same cores, weft with its default 2 workers) and
# in the pinned mode (server on SRV_CPU, client on CLI_CPU, weft with one
# worker, Go with GOMAXPROCS=1, redis as is). Every part runs R clean rounds
# whose server order rotates (see each script), so every ratio is taken
# within a round; the tables give the medians of the per-round ratios: req/s,
# p50/p99/p999 latency and the server's CPU per request (user+sys from
# /proc/PID/stat over the load, divided by the requests served).
#
#   bench/series21.sh [R]                 # R clean rounds per part, default 5
#   PARTS="kv-pinned echo-pinned" bench/series21.sh 3
#   OUT=/tmp/s21 KV_N1=20000 KV_N16=200000 ECHO_DUR=2s bench/series21.sh 1   # a short check
#
# Writes OUT/series.md (every part's tables under a heading with its
# command) and OUT/series.tsv (one line per measured figure: bench, mode,
# round, server, config, metric, value; a header line first), and keeps each
# part's raw outputs in OUT/<part>/. Environment: PARTS (default "kv-shared
# kv-pinned echo-shared echo-pinned"), KV_CONNS (default "50 1000"),
# KV_PIPES ("1 16"), KV_TESTS ("set get": the issue's rows), KV_N1 / KV_N16
# (compare_kv.sh's N1 / N16, default its own), ECHO_CONNS ("50 1000"),
# ECHO_DUR (compare_echo.sh's DUR, default its own), OUT (default a fresh
# /tmp/series21.XXXX); everything else (KV, E, GO_BIN, SRV_CPU, CLI_CPU,
# MAX_OTHER, QUIET_MAX, ...) passes through to the scripts.
# Exit status: 0 when every part exited 0, else 1 (each part's failures are
# in OUT/<part>/failures.txt); 2 on a usage error.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
R=${1:-${R:-5}}
[[ $R =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [rounds >= 1]" >&2; exit 2; }
PARTS=${PARTS:-kv-shared kv-pinned echo-shared echo-pinned}
for part in $PARTS; do
    case $part in kv-shared | kv-pinned | echo-shared | echo-pinned) ;;
        *) echo "PARTS: '$part' is not one of kv-shared kv-pinned echo-shared echo-pinned" >&2; exit 2 ;;
    esac
done
OUT=${OUT:-$(mktemp -d /tmp/series21.XXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
MD=$OUT/series.md
TSV=$OUT/series.tsv
printf 'bench\tmode\tround\tserver\tconfig\tmetric\tvalue\n' >"$TSV"
{
    echo "# Issue 21 series, $(date -u +%FT%TZ)"
    echo
    echo "Commit $(git -C "$HERE/.." rev-parse --short HEAD 2>/dev/null), $(uname -srm), $(nproc) CPUs;" \
        "uptime at the start: $(uptime)."
} >"$MD"
status=0
for part in $PARTS; do
    bench=${part%-*} mode=${part#*-}
    dir=$OUT/$part
    mkdir -p "$dir"
    if [ "$bench" = kv ]; then
        cmd=(env MODE="$mode" OUT="$dir" CONNS="${KV_CONNS:-50 1000}" PIPES="${KV_PIPES:-1 16}"
             TESTS="${KV_TESTS:-set get}" ${KV_N1:+N1=$KV_N1} ${KV_N16:+N16=$KV_N16}
             "$HERE/compare_kv.sh" "$R")
    else
        cmd=(env MODE="$mode" OUT="$dir" CONNS="${ECHO_CONNS:-50 1000}" ${ECHO_DUR:+DUR=$ECHO_DUR}
             "$HERE/compare_echo.sh" "$R")
    fi
    echo "# $part: ${cmd[*]}"
    "${cmd[@]}" 2>&1 | tee "$dir/stdout.txt"
    rc=${PIPESTATUS[0]}
    [ "$rc" -eq 0 ] || status=1
    {
        echo
        echo "## $part (exit status $rc)"
        echo
        echo "    ${cmd[*]}"
        echo
        grep -E '^# compare_|^# (done|rounds in|left out|goals met)' "$dir/stdout.txt" | sed 's/^# /- /'
        echo
        # The tables, as the script printed them.
        grep -E '^\|' "$dir/stdout.txt" | awk 'prev && !/^\|---/ && $0 ~ /^\| (config|weft)/ { print "" } { print; prev = 1 }'
    } >>"$MD"
    # results.txt: "round config metric value", config = server.rest.
    awk -v b="$bench" -v m="$mode" 'NF == 4 { split($2, p, "."); srv = p[1]; cfg = substr($2, length(srv) + 2)
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b, m, $1, srv, cfg, $3, $4 }' "$dir/results.txt" >>"$TSV"
done
echo "# series written: $MD and $TSV (uptime at the end: $(uptime))"
exit $status
