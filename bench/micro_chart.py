#!/usr/bin/env python3
"""Writes the data of the micro-benchmark chart (docs/charts/data/micro.csv)
from the programs' own output, so that a new series replaces the figures
without copying them by hand.

    make bench > weft.txt          # or compare_chan.sh's results.txt
    ../shared/peers/run_all.sh go boost > peers.txt
    bench/micro_chart.py --series X --commit abc1234 --when "2026-12-08, quiet" \\
        --command "make bench; ../shared/peers/run_all.sh go boost" weft.txt peers.txt \\
        > docs/charts/data/micro.csv
    make bench-charts

Input lines are `name value unit` (weft's programs, or weft.NAME / go.NAME /
boost.NAME as run_all.sh and the compare scripts prefix them) or
`round name value unit` (a compare script's results.txt); a name seen in
several rounds (or files) gives the median, written with one decimal
below 1000 and none above. Other lines are ignored. Each panel below
is written when weft's figure is there; a peer's bar when its figure is.
Exits 1 if no panel has a weft figure.
"""
import argparse
import csv
import io
import statistics
import sys

# panel, group, weft name, Go name, Boost.Fiber name (as run_all.sh prints them), better
PANELS = [
    ("yield switch, 1 worker", "yield", "yield_switch_ns", "yield_switch_ns_p1", "yield_switch_ns_rr",
     "lower"),
    ("spawn+join, 2 workers", "spawn+join", "spawn_join_ns", "spawn_join_ns_p2",
     "spawn_join_ns_rr_post_pooled16k", "lower"),
    ("spawn+join, 1 worker", "spawn+join", "spawn_join_ns_1w", "spawn_join_ns_p1",
     "spawn_join_ns_rr_post_pooled16k", "lower"),
    ("spawn then join at once, 1 worker", "spawn+join", "spawn_join_seq_ns_1w", None,
     "spawn_join_ns_rr_dispatch_pooled16k", "lower"),
    ("skynet 10^6 leaves, 2 workers", "skynet", "skynet_1m_ms", "skynet_1m_ms_p2",
     "skynet_1m_ms_ws2_dispatch_buf_fixed16k", "lower"),
    ("skynet 10^6 leaves, 1 worker", "skynet", "skynet_1m_ms_1w", "skynet_1m_ms_p1",
     "skynet_1m_ms_rr_dispatch_buf_pooled16k", "lower"),
    ("memory per parked fiber, 10^6 parked", "memory", "parked_fiber_bytes",
     "mem_per_blocked_goroutine_bytes", "mem_per_blocked_fiber_bytes_fixed16k", "lower"),
    ("channel ping-pong round trip, 1 worker", "ping-pong", "chan_pingpong_rt_ns_1w",
     "chan_pingpong_rt_ns_p1", "chan_pingpong_rt_ns_1thread", "lower"),
    ("channel ping-pong round trip, 2 workers", "ping-pong", "chan_pingpong_rt_ns_2w",
     "chan_pingpong_rt_ns_p2", None, "lower"),
    ("MPMC channel, 4 producers 4 consumers", "mpmc", "chan_mpmc_mmsgs", "mpmc_4p4c_mmsgs_p2", None,
     "higher"),
    ("contended mutex, 1000 fibers", "mutex", "mutex_contended_ns", "mutex_1000g_op_ns_p2", None,
     "lower"),
]


def read(paths):
    """{prefixed name: (median value as printed, unit)}; unprefixed names are weft's."""
    seen = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                fields = line.split()
                if not fields or fields[0].startswith("#"):
                    continue
                if len(fields) == 4 and fields[0].isdigit():
                    fields = fields[1:]
                if len(fields) != 3:
                    continue
                name, value, unit = fields
                try:
                    float(value)
                except ValueError:
                    continue
                if "." not in name:
                    name = "weft." + name
                seen.setdefault(name, ([], unit))[0].append(value)
    # The programs print 3 decimals; a chart's label needs 4 or 5 digits.
    return {name: (f"{m:.0f}" if m >= 1000 else f"{m:.1f}", unit)
            for name, (values, unit) in seen.items()
            for m in [statistics.median(float(v) for v in values)]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", required=True, help="the series' name in docs/benchmarks-history.md")
    ap.add_argument("--commit", required=True, help="weft's commit")
    ap.add_argument("--when", required=True, help="date, time and machine state")
    ap.add_argument("--command", required=True, help="the commands that produced the inputs")
    ap.add_argument("inputs", nargs="+")
    a = ap.parse_args()
    figures = read(a.inputs)
    out = io.StringIO()  # written only when complete
    w = csv.writer(out, lineterminator="\n")
    out.write("# title: Micro benchmarks: weft vs Go vs Boost.Fiber (lower is better unless marked)\n")
    out.write(f"# source: series {a.series} (weft commit {a.commit}, {a.when}); peers: "
              "../shared/peers (run_all.sh). Table in docs/benchmarks-history.md.\n")
    out.write(f"# command: {a.command}\n")
    w.writerow(["panel", "group", "bar", "value", "unit", "better", "series", "commit"])
    panels = 0
    for panel, group, weft, go, boost, better in PANELS:
        if "weft." + weft not in figures:
            continue
        panels += 1
        for bar, name in (("weft", "weft." + weft), ("Go", go and "go." + go),
                          ("Boost.Fiber", boost and "boost." + boost)):
            if name and name in figures:
                value, unit = figures[name]
                w.writerow([panel, group, bar, value, unit, better, a.series, a.commit])
    if panels == 0:
        print("micro_chart: no weft figure in the inputs", file=sys.stderr)
        return 1
    sys.stdout.write(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
