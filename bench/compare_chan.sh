#!/usr/bin/env bash
# Paired comparison of weft-bench-chan with the peer programs of
# ../shared/peers (Go chanpingpong p1/p2, mpmc, mutex; Boost.Fiber
# chanpingpong threads=1), interleaved for R rounds. Within a round every
# program runs once (each prints the median of its own runs after a warm-up);
# odd rounds run weft first, even rounds the peers first. Before each round
# the script waits (up to QUIET_MAX s) until no compiler runs and the CPUs are
# < 15 % busy over 1 s. At the end: the median of each figure over the rounds,
# its min..max, and weft/peer ratios (median of the per-round ratios, and the
# ratio of the medians) against the goals.
#
#   bench/compare_chan.sh [R]          # R rounds, default 5
#   W=build-bench/bench OUT=/tmp/cmp REPS=5 bench/compare_chan.sh 5
#
# Environment: W (dir of weft-bench-chan, default <repo>/build-bench/bench),
# P (peers dir, default ../shared/peers from the repository root: see
# bench/lib.sh), REPS (weft reps, default 5), OUT (dir for the raw
# outputs, default a fresh /tmp/compare_chan.XXXX), QUIET_MAX (s to wait for
# a quiet machine per round, default 120, 0 = don't).
# Build the peers first if needed: <repo>/../shared/peers/run_all.sh build
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
R=${1:-${R:-5}}
W=${W:-$HERE/../build-bench/bench}
. "$HERE/lib.sh"
P=${P:-$(peers_dir "$REPO")}
REPS=${REPS:-5}
QUIET_MAX=${QUIET_MAX:-120}
OUT=${OUT:-$(mktemp -d /tmp/compare_chan.XXXX)}
mkdir -p "$OUT"
RES=$OUT/results.txt   # "round name value unit"
: >"$RES"

for b in "$W/weft-bench-chan" "$P/go/bin/chanpingpong" "$P/go/bin/mpmc" "$P/go/bin/mutex" \
         "$P/boost/bin/chanpingpong"; do
    [ -x "$b" ] || { echo "missing $b (build weft-bench-chan / run $P/run_all.sh build)" >&2; exit 2; }
done

cpu_ticks() { awk '/^cpu /{ print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6, $9 }' /proc/stat; }

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

# run ROUND PREFIX LOG CMD...: runs CMD under timeout, records its result lines.
run() {
    local round=$1 prefix=$2 log=$3
    shift 3
    local out rc
    out=$(timeout -k 5 300 "$@" 2>>"$OUT/stderr.txt")
    rc=$?
    printf '%s\n' "$out" >>"$log"
    if [ $rc -ne 0 ]; then
        echo "# round $round FAILED rc=$rc: $*" | tee -a "$OUT/failures.txt"
        return 0
    fi
    printf '%s\n' "$out" | awk -v r="$round" -v p="$prefix" '!/^#/ && NF == 3 {
        printf "%s %s.%s %s %s\n", r, p, $1, $2, $3 }' | tee -a "$RES" | sed 's/^/round /'
}

weft_group() {
    run "$1" weft "$OUT/weft.log" "$W/weft-bench-chan" reps="$REPS"
}
peer_group() {
    run "$1" go "$OUT/go.log" env GOMAXPROCS=1 "$P/go/bin/chanpingpong"
    run "$1" go "$OUT/go.log" env -u GOMAXPROCS "$P/go/bin/chanpingpong"
    run "$1" go "$OUT/go.log" env -u GOMAXPROCS "$P/go/bin/mpmc"
    run "$1" go "$OUT/go.log" env -u GOMAXPROCS "$P/go/bin/mutex"
    run "$1" boost "$OUT/boost.log" "$P/boost/bin/chanpingpong" threads=1
}

echo "# compare_chan: $(date -u +%FT%TZ) R=$R weft=$W reps=$REPS peers=$P out=$OUT"
echo "# $(uname -srm) cpus=$(nproc); $(go version 2>/dev/null); weft commit $(git -C "$HERE/.." rev-parse --short HEAD 2>/dev/null)$(git -C "$HERE/.." diff --quiet 2>/dev/null || echo '+dirty'); weft-bench-chan built $(date -u -r "$W/weft-bench-chan" +%FT%TZ) md5 $(md5sum <"$W/weft-bench-chan" | cut -c1-12)"
for r in $(seq "$R"); do
    [ "$QUIET_MAX" -gt 0 ] && quiet_gate "$r"
    read -r T0 I0 S0 < <(cpu_ticks)
    echo "# round $r start $(date -u +%T) ($([ $((r % 2)) -eq 1 ] && echo weft first || echo peers first))"
    if [ $((r % 2)) -eq 1 ]; then weft_group "$r"; peer_group "$r"; else peer_group "$r"; weft_group "$r"; fi
    read -r T1 I1 S1 < <(cpu_ticks)
    echo "# round $r end $(date -u +%T), cpu steal $(awk -v t=$((T1 - T0)) -v s=$((S1 - S0)) 'BEGIN { printf "%.1f%%", t ? 100 * s / t : 0 }')"
done
grep -h '^# chan_pingpong_rt_ns_2w placement' "$OUT/weft.log"

python3 - "$RES" "$R" <<'EOF' | tables_as_csv "$OUT/summary"
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
R = int(sys.argv[2])
val = {}   # name -> {round: value}
unit = {}
for r, name, v, u in rows:
    val.setdefault(name, {})[int(r)] = float(v)
    unit[name] = u
def fmt(x): return "%.3f" % x
print()
print("| figure | median | min..max | rounds | unit |")
print("|---|---:|---|---:|---|")
for name in sorted(val):
    xs = list(val[name].values())
    print("| %s | %s | %s..%s | %d | %s |" % (name, fmt(st.median(xs)), fmt(min(xs)), fmt(max(xs)), len(xs), unit[name]))
# (weft figure, peer figure, goal op, goal bound, lower_is_better)
pairs = [
    ("weft.chan_pingpong_rt_ns_1w", "go.chan_pingpong_rt_ns_p1", "<=", 0.5, "pingpong 1w <= 1/2 of Go p1"),
    ("weft.chan_pingpong_rt_ns_2w", "go.chan_pingpong_rt_ns_p2", "<=", 1.0, "pingpong 2w <= Go p2"),
    ("weft.chan_pingpong_rt_ns_1w", "boost.chan_pingpong_rt_ns_1thread", None, None, "(vs Boost.Fiber, 1 thread)"),
    ("weft.chan_mpmc_mmsgs", "go.mpmc_4p4c_mmsgs_p2", ">=", 1.0, "MPMC >= Go (Mmsg/s)"),
    ("weft.mutex_contended_ns", "go.mutex_1000g_op_ns_p2", "<=", 1.0, "contended mutex <= Go"),
]
print()
print("| weft | peer | ratio weft/peer: median of per-round (min..max) | ratio of medians | goal | met in rounds | met (median) |")
print("|---|---|---|---:|---|---|---|")
for w, p, op, bound, goal in pairs:
    if w not in val or p not in val:
        print("| %s | %s | (missing) | | %s | | |" % (w, p, goal)); continue
    rs = [val[w][r] / val[p][r] for r in val[w] if r in val[p] and val[p][r] != 0]
    if not rs:
        continue
    med = st.median(rs)
    rom = st.median(val[w].values()) / st.median(val[p].values())
    if op is None:
        met_r, met = "", ""
    else:
        ok = (lambda x: x <= bound) if op == "<=" else (lambda x: x >= bound)
        met_r = "%d of %d" % (sum(ok(x) for x in rs), len(rs))
        met = "yes" if ok(med) else "NO"
    print("| %s | %s | %.3f (%.3f..%.3f) | %.3f | %s | %s | %s |" % (w, p, med, min(rs), max(rs), rom, goal, met_r, met))
EOF
echo "# raw outputs in $OUT"
