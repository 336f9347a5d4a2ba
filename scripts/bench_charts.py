#!/usr/bin/env python3
"""Renders the benchmark charts of docs/benchmarks.md from their data files.

    bench_charts.py DATA_DIR OUT_DIR      (make bench-charts: docs/charts/data -> docs/charts)

Each DATA_DIR/NAME.csv becomes OUT_DIR/NAME.svg. A data file starts with
comment lines, then a CSV table with the header

    panel,group,bar,value,unit,better,series,commit

  # title: ...      the chart's title
  # source: ...     which series, commit, date and machine state the figures
                    come from (printed under the chart)
  # command: ...    the command that measured them (printed under the chart)

One panel (a subplot) per distinct `panel`, in order of first appearance;
in it one row per `group`, and per group one horizontal bar per `bar`
(the same colour for the same `bar` in every panel), labelled with its
value. `better` (lower|higher) is said in the panel's axis label. The
figures are the data file's as they are: nothing is computed from them.

Output is deterministic for one matplotlib version (no date, fixed ids),
so a re-render of unchanged data leaves the SVGs unchanged. Exits 1 naming
the file and line of a malformed row.
"""
import csv
import io
import math
import pathlib
import sys
import textwrap

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402  (after use())

HEADER = ["panel", "group", "bar", "value", "unit", "better", "series", "commit"]
# Colour-blind-safe (Okabe-Ito): weft's bars (a `bar` starting with "weft")
# in blues, the peers' in the other colours, the same in every chart.
WEFT_COLOURS = ["#0072B2", "#56B4E9", "#003F63"]
PEER_COLOURS = ["#E69F00", "#009E73", "#CC79A7", "#D55E00", "#999999"]


class DataError(Exception):
    pass


def read(path):
    meta, body = {}, []
    for n, line in enumerate(path.read_text().split("\n"), 1):
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            meta[key.strip()] = value.strip()
        elif line.strip():
            body.append((n, line))
    if not body:
        raise DataError(f"{path}: no rows")
    rows = list(csv.reader(io.StringIO("\n".join(l for _, l in body))))
    if rows[0] != HEADER:
        raise DataError(f"{path}:{body[0][0]}: header must be {','.join(HEADER)}")
    out = []
    for (n, _), r in zip(body[1:], rows[1:]):
        if len(r) != len(HEADER):
            raise DataError(f"{path}:{n}: {len(r)} fields, not {len(HEADER)}")
        row = dict(zip(HEADER, r))
        row["text"] = row["value"].strip()
        try:
            row["value"] = float(row["value"])
        except ValueError:
            raise DataError(f"{path}:{n}: value '{row['value']}' is not a number") from None
        if not math.isfinite(row["value"]) or row["value"] < 0:
            raise DataError(f"{path}:{n}: value must be finite and >= 0")
        if row["better"] not in ("lower", "higher"):
            raise DataError(f"{path}:{n}: better must be lower or higher")
        out.append(row)
    for key in ("title", "source", "command"):
        if not meta.get(key):
            raise DataError(f"{path}: no '# {key}:' line")
    return meta, out


def ordered(values):
    seen = []
    for v in values:
        if v not in seen:
            seen.append(v)
    return seen


def fmt(text):
    """A bar's label: the value as the data file writes it (so the chart
    says 113.6 where the table does), integers of 5+ digits grouped."""
    if text.isdigit() and len(text) > 4:
        return f"{int(text):,}".replace(",", " ")
    return text


def render(path, out_dir):
    meta, rows = read(path)
    panels = ordered(r["panel"] for r in rows)
    bars = ordered(r["bar"] for r in rows)
    weft = [b for b in bars if b.startswith("weft")]
    peers = [b for b in bars if not b.startswith("weft")]
    colour = {b: WEFT_COLOURS[i % len(WEFT_COLOURS)] for i, b in enumerate(weft)}
    colour.update({b: PEER_COLOURS[i % len(PEER_COLOURS)] for i, b in enumerate(peers)})
    groups_of = {p: ordered(r["group"] for r in rows if r["panel"] == p) for p in panels}

    # Layout: one column for panels of one group each (the micro benchmarks:
    # many small panels, two columns), else two columns side by side.
    cols = 2 if len(panels) > 1 else 1
    prows = math.ceil(len(panels) / cols)
    rows_per_panel = max(len(groups_of[p]) * max(1, len(bars)) for p in panels)
    panel_h = 0.55 + 0.19 * rows_per_panel
    fig_w = 11.0
    title = "\n".join(textwrap.wrap(meta["title"], 100))
    title_h = 0.25 * (title.count("\n") + 1)
    note = "\n".join(textwrap.wrap("Source: " + meta["source"], 150) +
                     textwrap.wrap("Command: " + meta["command"], 150))
    note_h = 0.12 * (note.count("\n") + 1)
    fig_h = prows * panel_h + 0.8 + title_h + note_h
    fig, axes = plt.subplots(prows, cols, figsize=(fig_w, fig_h), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)

    for ax, panel in zip(axes.flat, panels):
        prow = [r for r in rows if r["panel"] == panel]
        groups = groups_of[panel]
        present = [b for b in bars if any(r["bar"] == b for r in prow)]
        height = 0.8 / len(present)
        top = 0.0
        ticks = []
        vmax = max(r["value"] for r in prow)
        for gi, g in enumerate(groups):
            centre = gi
            ticks.append(centre)
            for bi, b in enumerate(present):
                match = [r for r in prow if r["group"] == g and r["bar"] == b]
                if not match:
                    continue
                y = centre - 0.4 + height * (bi + 0.5)
                v = match[0]["value"]
                ax.barh(y, v, height=height * 0.9, color=colour[b], label=b)
                ax.text(v, y, " " + fmt(match[0]["text"]), va="center", ha="left", fontsize=7.5)
                top = max(top, v)
        ax.set_yticks(ticks)
        ax.set_yticklabels(groups if len(groups) > 1 else [""] * len(groups), fontsize=8.5)
        ax.set_ylim(len(groups) - 0.5, -0.5)  # first group on top, no margin around the bars
        unit = prow[0]["unit"]
        better = prow[0]["better"]
        ax.set_xlabel(f"{unit} ({better} is better)", fontsize=8.5)
        ax.set_title(panel, fontsize=10, loc="left")
        ax.set_xlim(0, vmax * 1.22)
        ax.tick_params(axis="x", labelsize=8)
        ax.tick_params(axis="y", length=0)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)

    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[b]) for b in bars]
    fig.suptitle(title, fontsize=12, x=0.01, ha="left", y=1 - 0.08 / fig_h, va="top")
    fig.legend(handles, bars, loc="upper left", bbox_to_anchor=(0.01, 1 - (0.15 + title_h) / fig_h),
               ncol=len(bars), fontsize=9, frameon=False)
    fig.text(0.01, 0.005, note, fontsize=7, ha="left", va="bottom", color="#444444")
    fig.tight_layout(rect=(0, (0.15 + note_h) / fig_h, 1, 1 - (0.3 + title_h) / fig_h),
                     h_pad=1.2, w_pad=2.0)
    out = out_dir / (path.stem + ".svg")
    fig.savefig(out, format="svg", metadata={"Date": None})  # Creator names the matplotlib version
    plt.close(fig)
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    data, out_dir = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    files = sorted(data.glob("*.csv"))
    if not files:
        print(f"bench_charts: no *.csv in {data}", file=sys.stderr)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)
    plt.rcParams["svg.hashsalt"] = "weft-bench-charts"
    plt.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, searchable
    plt.rcParams["font.family"] = "sans-serif"
    try:
        for f in files:
            print(f"bench_charts: {render(f, out_dir)}")
    except DataError as e:
        print(f"bench_charts: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
