#!/usr/bin/env bash
# Instructions per echoed message in weft-echo's TLS server, by callgrind:
# the server runs under valgrind (epoll backend: valgrind does not know
# io_uring), Go clients (bench/tls/tlsecho.go, built by compare_tls.sh into
# $OUT) echo SIZE-byte messages over CONNS connections; the counters are
# zeroed after the warm-up (handshakes), dumped after the measured run, and
# the total is divided by the number of SSL_write_ex calls (one per echo).
#
#   bench/callgrind_tls_echo.sh E [E2 ...]    # one line per binary
#   bench/callgrind_tls_echo.sh go            # the Go server (tlsecho server)
#
# Each line also splits the instructions per echo by where they ran: for
# weft, libcrypto, libssl, libc and the weft binary; for Go, crypto/tls with
# crypto/aes and crypto/cipher (the record layer), the Go runtime, and
# net/poll/syscall. Go runs with GODEBUG=asyncpreemptoff=1 (callgrind
# asserts on the preemption signal); echoes are counted at
# crypto/tls.(*Conn).Write for Go, SSL_write_ex for weft.
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
  if [ "$E" = go ]; then
    GODEBUG=asyncpreemptoff=1 valgrind --tool=callgrind --callgrind-out-file="$W/cg.%p" \
      "$TLSECHO" server -addr 127.0.0.1:0 -cert "$CERT" -key "$KEY" >"$W/srv.log" 2>&1 &
  else
    # Under valgrind a worker runs ~50 times slower: the stall detector's
    # reports (a backtrace symbolised through libdw) would be counted as
    # echo cost, so its threshold is set out of reach.
    WEFT_STALL_WARN_MS=3600s valgrind --tool=callgrind --callgrind-out-file="$W/cg.%p" \
      "$E" --port 0 --workers 2 --io epoll --tls "$CERT" "$KEY" >"$W/srv.log" 2>&1 &
  fi
  VP=$!
  ADDR=
  for _ in $(seq 300); do
    # the background shell may not have created srv.log yet
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
  # Go's server under valgrind may not stop on SIGINT: KILL after 5 s (the
  # counters were dumped above).
  kill -INT "$VP"
  for _ in $(seq 50); do
    kill -0 "$VP" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$VP" 2>/dev/null || true
  wait "$VP" || true
  python3 - "$E" "$W"/cg.$VP.1 <<'PY'
import re, sys
from collections import Counter
# Self cost per function and object. Handshakes that fall in the window (a
# client slowed down by the load, or a reconnect) are subtracted: their
# inclusive cost, counted at the calls to SSL_do_handshake.
tabs = {"fn": {}, "ob": {}}
def name(kind, s):
    m = re.match(r'\((\d+)\)(?: (.*))?', s.strip())
    if not m:
        return s.strip()
    if m.group(2):
        tabs[kind][m.group(1)] = m.group(2)
    return tabs[kind].get(m.group(1), m.group(1))
calls, fself, oself, fob = Counter(), Counter(), Counter(), {}
ob = fn = cfn = pending = None
hs = 0
for line in open(sys.argv[2]):
    key, _, rest = line.partition('=')
    if key == 'ob':
        ob = name("ob", rest)
    elif key == 'cob':
        name("ob", rest)
    elif key == 'fn':
        fn = name("fn", rest)
        fob[fn] = ob
    elif key == 'cfn':
        cfn = name("fn", rest)
    elif key == 'calls':
        calls[cfn] += int(rest.split()[0])
        pending = cfn
    elif line[:1].isdigit() or line[:1] in ('+', '-', '*'):
        cost = int(line.split()[1])
        if pending is None:
            fself[fn] += cost
            oself[ob] += cost
        else:
            if pending == 'SSL_do_handshake':
                hs += cost
            pending = None
go = sys.argv[1] == 'go'
n = calls['crypto/tls.(*Conn).Write' if go else 'SSL_write_ex']
n1 = max(n, 1)
total = sum(fself.values())
parts = Counter()
if go:
    for f, c in fself.items():
        if f.startswith(('crypto/', 'vendor/golang.org/x/crypto/', 'bytes.')):
            parts['crypto/tls+aes+cipher+bytes'] += c
        elif f.startswith('runtime.'):
            parts['runtime'] += c
        elif f.startswith(('internal/poll.', 'syscall.', 'net.')):
            parts['net/poll/syscall'] += c
        else:
            parts['other'] += c
else:
    for o, c in oself.items():
        parts[(o or '?').rsplit('/', 1)[-1].split('.so')[0]] += c
split = ", ".join(f"{k} {c / n1:.0f}" for k, c in parts.most_common(5))
print(f"{sys.argv[1]}: {total} instructions, {n} echoes, {(total - hs) // n1} per echo "
      f"({split}), {calls['malloc'] / n1:.1f} mallocs per echo; "
      f"{calls['SSL_do_handshake']} handshake calls ({hs} instructions) left out")
PY
  if [ -n "${KEEP:-}" ]; then
    I=$((${I:-0} + 1))
    mkdir -p "$KEEP" && mv "$W"/cg.$VP.1 "$KEEP/cg.$I"
  fi
  rm -f "$W"/cg.*
done
