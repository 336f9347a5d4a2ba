#!/usr/bin/env bash
# Paired comparison of weft's TLS echo server (examples/echo --tls, weft::tls
# over OpenSSL) with a Go TLS echo server (bench/tls/tlsecho.go, crypto/tls),
# both driven by the same Go load generator (tlsecho load / handshakes):
#
#   * echo: closed loop, CONNS connections (default 50), each writing a
#     message of SIZE bytes (64 and 16384) and reading it back; req/s, p50
#     and p99 latency;
#   * handshakes: CONNS loops of connect + full TLS 1.3 handshake (ECDSA
#     P-256 certificate, no resumption) + one 64-byte echo + close;
#     handshakes/s.
#
# Each round starts, in an order that rotates with the round, the Go server
# (GOMAXPROCS unset), weft-echo --io io_uring and weft-echo --io epoll (both
# --workers WORKERS), and runs the three loads against each. Ratios
# weft/Go are taken within a round; the summary gives per configuration the
# median (min..max) over rounds, and the median per-round ratio. The load
# average and the CPU share of other processes during each load are
# recorded, since the machine is shared: compare only within one run.
#
#   bench/compare_tls.sh [ROUNDS]             # default 5 rounds
#   E=build/examples/weft-echo DUR=3s bench/compare_tls.sh 3
#
# Environment: E (weft-echo, default <repo>/build/examples/weft-echo), GO
# (the go command, default go: Debian's golang-go, which the script installs
# through scripts/bootstrap.sh when missing), WORKERS (2), CONNS (50),
# SIZES ("64 16384"), WARMUP (1s), DUR (5s), OUT (raw outputs, default a new
# /tmp/compare_tls.XXXX), E0 (optional: a second weft-echo, the "before" of
# a change; it runs as configurations uring0 and epoll0 in the same rounds,
# and the summary adds the ratios E / E0).
# Exit status: 0 when every load ran; 1 if one failed; 2 on a setup error.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
. "$HERE/lib.sh"
R=${1:-5}
E=${E:-$REPO/build/examples/weft-echo}
GO=${GO:-go}
WORKERS=${WORKERS:-2}
CONNS=${CONNS:-50}
SIZES=${SIZES:-64 16384}
WARMUP=${WARMUP:-1s}
DUR=${DUR:-5s}
OUT=${OUT:-$(mktemp -d /tmp/compare_tls.XXXX)}
mkdir -p "$OUT"

[[ $R =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [rounds >= 1]" >&2; exit 2; }
# Go (Debian's golang-go) builds the peer; only this benchmark needs it, so
# it is ensured here, not by the test bootstrap.
"$REPO/scripts/bootstrap.sh" golang-go openssl python3 || exit 2
[ -x "$E" ] || { echo "missing $E: cmake --build build --target weft-echo" >&2; exit 2; }
command -v "$GO" >/dev/null || { echo "missing $GO (golang-go)" >&2; exit 2; }
command -v openssl >/dev/null || { echo "missing openssl" >&2; exit 2; }
command -v python3 >/dev/null || { echo "missing python3 (summary)" >&2; exit 2; }

# The Go program: standard library only, built offline.
TLSECHO=$OUT/tlsecho
(cd "$HERE/tls" && GOFLAGS=-mod=mod GOCACHE=${GOCACHE:-$OUT/gocache} "$GO" build -o "$TLSECHO" .) ||
  { echo "go build failed" >&2; exit 2; }
# One certificate for both servers: ECDSA P-256, for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout "$OUT/key.pem" -out "$OUT/cert.pem" -subj /CN=127.0.0.1 \
  -addext subjectAltName=IP:127.0.0.1 2>/dev/null || { echo "openssl req failed" >&2; exit 2; }

RES=$OUT/results.txt # "round config metric value"
: >"$RES"
FAILS=0
SPID=
cleanup() { # only the server this script started, by its pid
  if [ -n "$SPID" ]; then
    kill "$SPID" 2>/dev/null
    wait "$SPID" 2>/dev/null
    SPID=
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# busy and total jiffies of all CPUs; CPU jiffies of one process
cpu_all() { awk '/^cpu /{ print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9 }' /proc/stat; }
cpu_pid() { awk '{ print $14+$15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

start_server() { # config round -> sets SPID and ADDR
  local log=$OUT/server.$2.$1.log
  case $1 in
  go) "$TLSECHO" server -addr 127.0.0.1:0 -cert "$OUT/cert.pem" -key "$OUT/key.pem" >"$log" 2>&1 &
    SPID=$! ;;
  uring | epoll | uring0 | epoll0)
    local io=io_uring bin=$E
    case $1 in epoll*) io=epoll ;; esac
    case $1 in *0) bin=$E0 ;; esac
    "$bin" --port 0 --workers "$WORKERS" --io "$io" --tls "$OUT/cert.pem" "$OUT/key.pem" >"$log" 2>&1 &
    SPID=$! ;;
  esac
  ADDR=
  for _ in $(seq 100); do
    ADDR=$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$log")
    [ -n "$ADDR" ] && return 0
    sleep 0.05
  done
  return 1
}

run_load() { # round config name cmd...
  local r=$1 cfg=$2 name=$3
  shift 3
  local out=$OUT/load.$r.$cfg.$name.txt
  read -r b0 t0 < <(cpu_all)
  local s0 l0 c0
  s0=$(cpu_pid "$SPID")
  l0=$(cut -d' ' -f1 /proc/loadavg)
  "$@" >"$out" 2>&1 &
  local lp=$!
  c0=0
  wait "$lp"
  local rc=$?
  read -r b1 t1 < <(cpu_all)
  local s1
  s1=$(cpu_pid "$SPID")
  if [ $rc -ne 0 ]; then
    echo "# round $r $cfg $name FAILED: $(tail -1 "$out")" | tee -a "$OUT/failures.txt"
    FAILS=$((FAILS + 1))
    return
  fi
  awk -v r="$r" -v c="$cfg.$name" '!/^#/ && NF == 3 { print r, c, $1, $2 }' "$out" >>"$RES"
  # busy share of all CPUs during the load, and the server's share
  echo "$r $cfg.$name busy_pct $(((b1 - b0) * 100 / (t1 - t0 + 1)))" >>"$RES"
  echo "$r $cfg.$name server_pct $(((s1 - s0) * 100 / (t1 - t0 + 1)))" >>"$RES"
  echo "$r $cfg.$name loadavg $l0" >>"$RES"
}

CONFIGS=(go uring epoll)
if [ -n "${E0:-}" ]; then
  [ -x "$E0" ] || { echo "missing E0=$E0" >&2; exit 2; }
  CONFIGS+=(uring0 epoll0)
fi
NC=${#CONFIGS[@]}
for r in $(seq 1 "$R"); do
  echo "== round $r ($(date +%T), loadavg $(cut -d' ' -f1-3 /proc/loadavg))"
  for k in $(seq 0 $((NC - 1))); do
    cfg=${CONFIGS[$(((r - 1 + k) % NC))]}
    if ! start_server "$cfg" "$r"; then
      echo "# round $r $cfg: server did not start" | tee -a "$OUT/failures.txt"
      FAILS=$((FAILS + 1))
      cleanup
      continue
    fi
    for s in $SIZES; do
      run_load "$r" "$cfg" "echo$s" "$TLSECHO" load -addr "$ADDR" -ca "$OUT/cert.pem" \
        -c "$CONNS" -size "$s" -warmup "$WARMUP" -dur "$DUR"
    done
    run_load "$r" "$cfg" hs "$TLSECHO" handshakes -addr "$ADDR" -ca "$OUT/cert.pem" \
      -c "$CONNS" -warmup "$WARMUP" -dur "$DUR"
    cleanup
  done
done

python3 - "$RES" "$SIZES" "${CONFIGS[*]}" <<'PY' | tables_as_csv "$OUT/summary"
import sys, statistics as st
from collections import defaultdict
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
sizes = sys.argv[2].split()
configs = sys.argv[3].split()
v = defaultdict(dict)  # (config.load, metric) -> {round: value}
for r, c, m, x in rows:
    v[(c, m)][int(r)] = float(x)
def med(xs):
    return "%.0f (%.0f..%.0f)" % (st.median(xs), min(xs), max(xs)) if xs else "-"
loads = ["echo" + s for s in sizes] + ["hs"]
metric = {l: ("req_per_s" if l != "hs" else "handshakes_per_s") for l in loads}
print("\nper configuration: median (min..max) over rounds")
print("| load | config | rate/s | p50 us | p99 us | server CPU % | all CPUs busy % | loadavg |")
print("|---|---|---|---|---|---|---|---|")
for l in loads:
    for c in configs:
        g = lambda m: list(v[(c + "." + l, m)].values())
        print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
            l, c, med(g(metric[l])), med(g("p50_us")), med(g("p99_us")),
            med(g("server_pct")), med(g("busy_pct")),
            "%.1f" % st.median(g("loadavg")) if g("loadavg") else "-"))
print("\nweft/Go ratio of the rate, per round: median (min..max)")
print("| load | io_uring / Go | epoll / Go |")
print("|---|---|---|")
for l in loads:
    cells = []
    for c in ["uring", "epoll"]:
        a, b = v[(c + "." + l, metric[l])], v[("go." + l, metric[l])]
        rs = [a[r] / b[r] for r in a if r in b and b[r] > 0]
        cells.append("%.2f (%.2f..%.2f)" % (st.median(rs), min(rs), max(rs)) if rs else "-")
    print("| %s | %s | %s |" % (l, cells[0], cells[1]))
if "uring0" in configs:
    print("\nE/E0 ratio of the rate (the change against its before), per round: median (min..max)")
    print("| load | io_uring E/E0 | epoll E/E0 | E0 io_uring / Go | E0 epoll / Go |")
    print("|---|---|---|---|---|")
    for l in loads:
        cells = []
        for c, d in [("uring", "uring0"), ("epoll", "epoll0"), ("uring0", "go"), ("epoll0", "go")]:
            a, b = v[(c + "." + l, metric[l])], v[(d + "." + l, metric[l])]
            rs = [a[r] / b[r] for r in a if r in b and b[r] > 0]
            cells.append("%.2f (%.2f..%.2f)" % (st.median(rs), min(rs), max(rs)) if rs else "-")
        print("| %s | %s |" % (l, " | ".join(cells)))
PY
echo "raw results: $RES"
[ $FAILS -eq 0 ] || exit 1
