#!/usr/bin/env bash
# Instructions per echoed message in weft-echo's TLS server, by callgrind:
# the server runs under valgrind (epoll backend: valgrind does not know
# io_uring), Go clients (bench/tls/tlsecho.go, built by compare_tls.sh into
# $OUT) echo SIZE-byte messages over CONNS connections; the counters are
# zeroed after the warm-up (handshakes), dumped after the measured run, and
# the total is divided by the number of SSL_write_ex calls (one per echo).
#
#   bench/callgrind_tls_echo.sh E [E2 ...]    # one line per binary
#
# Environment: TLSECHO (the Go program; default: the one compare_tls.sh
# built in /tmp/compare_tls.*), CERT/KEY (default: the same run's), SIZE (64),
# CONNS (50), WARMUP (3: seconds of handshakes and echoes before the counters
# are zeroed; raise it on a loaded machine), DUR (6s), KEEP (a directory: the callgrind files are kept there
# as cg.<n> for callgrind_annotate, n counting the binaries from 1).
set -eu
SIZE=${SIZE:-64}
CONNS=${CONNS:-50}
DUR=${DUR:-6s}
WARMUP=${WARMUP:-3} # seconds; counters are zeroed a second after it
if [ -z "${TLSECHO:-}" ]; then
  TLSECHO=$(ls -t /tmp/compare_tls.*/tlsecho /tmp/*/tlsecho 2>/dev/null | head -n1 || true)
fi
[ -x "${TLSECHO:-}" ] || { echo "no tlsecho: run bench/compare_tls.sh once, or set TLSECHO" >&2; exit 2; }
D=$(dirname "$TLSECHO")
CERT=${CERT:-$D/cert.pem}
KEY=${KEY:-$D/key.pem}
command -v valgrind >/dev/null || { echo "missing valgrind" >&2; exit 2; }
W=$(mktemp -d /tmp/callgrind_tls.XXXX)
for E in "$@"; do
  # Under valgrind a worker runs ~50 times slower: the stall detector's
  # reports (a backtrace symbolised through libdw) would be counted as echo
  # cost, so its threshold is set out of reach.
  WEFT_STALL_WARN_MS=3600s valgrind --tool=callgrind --callgrind-out-file="$W/cg.%p" "$E" --port 0 --workers 2 --io epoll \
    --tls "$CERT" "$KEY" >"$W/srv.log" 2>&1 &
  VP=$!
  ADDR=
  for _ in $(seq 300); do
    ADDR=$(sed -n 's/.*listening on \([0-9.]*:[0-9]*\).*/\1/p' "$W/srv.log" 2>/dev/null || true)
    [ -n "$ADDR" ] && break
    sleep 0.1
  done
  [ -n "$ADDR" ] || { echo "$E did not start: $W/srv.log" >&2; kill "$VP"; exit 1; }
  "$TLSECHO" load -addr "$ADDR" -ca "$CERT" -c "$CONNS" -size "$SIZE" -warmup "${WARMUP}s" -dur "$DUR" \
    >"$W/load.txt" 2>&1 &
  LP=$!
  sleep $((WARMUP + 1))
  callgrind_control -z "$VP" >/dev/null 2>&1
  wait "$LP"
  callgrind_control -d "$VP" >/dev/null 2>&1
  kill -INT "$VP"
  wait "$VP" || true
  python3 - "$E" "$W"/cg.$VP.1 <<'PY'
import re, sys
# Handshakes that fall in the window (a client slowed down by the load, or
# a reconnect) are subtracted: their inclusive cost, counted at the calls
# to SSL_do_handshake.
names, calls, total, cfn, hs, pending = {}, {}, 0, None, 0, None
def name(s):
    m = re.match(r'\((\d+)\)(?: (.*))?', s.strip())
    if not m:
        return s.strip()
    if m.group(2):
        names[m.group(1)] = m.group(2)
    return names.get(m.group(1), m.group(1))
for line in open(sys.argv[2]):
    if line.startswith('fn='):
        name(line[3:])
    elif line.startswith('cfn='):
        cfn = name(line[4:])
    elif line.startswith('calls=') and cfn:
        calls[cfn] = calls.get(cfn, 0) + int(line.split('=')[1].split()[0])
        pending = cfn
    elif line.startswith(('summary:', 'totals:')):
        total = int(line.split()[1])
    elif pending is not None and line[:1] != '' and (line[:1].isdigit() or line[:1] in '+-*'):
        if pending == 'SSL_do_handshake':
            hs += int(line.split()[1])
        pending = None
n = calls.get('SSL_write_ex', 0)
echo = total - hs
print(f"{sys.argv[1]}: {total} instructions, {n} echoes, "
      f"{echo // max(n, 1)} per echo, {calls.get('malloc', 0) / max(n, 1):.1f} mallocs per echo "
      f"({calls.get('SSL_do_handshake', 0)} handshake calls, {hs} instructions, left out)")
PY
  if [ -n "${KEEP:-}" ]; then
    I=$((${I:-0} + 1))
    mkdir -p "$KEEP" && mv "$W"/cg.$VP.1 "$KEEP/cg.$I"
  fi
  rm -f "$W"/cg.*
done
