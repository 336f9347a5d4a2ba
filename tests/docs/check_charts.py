#!/usr/bin/env python3
"""Checks the benchmark charts of the docs against their data.

    check_charts.py ROOT

1. scripts/bench_charts.py renders every docs/charts/data/*.csv into a
   scratch directory without an error;
2. each rendering is the same as the committed docs/charts/NAME.svg (a data
   file changed without `make bench-charts` fails here), when both were
   drawn by the same matplotlib (its version is in the SVG's metadata;
   Debian 12's, which bootstrap.sh installs, drew the committed ones);
3. every chart embedded in README.md or docs/**/*.md (a link or <img> to a
   charts/*.svg) exists, and every chart is embedded in docs/benchmarks.md.

Exits 1 naming each problem.
"""
import pathlib
import re
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from verdict import verdict  # noqa: E402

CHART_LINK = re.compile(r"(?:\]\(|src=\")([^)\"\s]*charts/[^)\"\s]+\.svg)")


def renderer(svg):
    """The matplotlib that drew an SVG (its Creator), or None."""
    m = re.search(r"<dc:title>(Matplotlib v[^<,]*)", svg.read_text())
    return m.group(1) if m else None


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    data = root / "docs" / "charts" / "data"
    charts = root / "docs" / "charts"
    problems, skipped = [], []
    names = sorted(p.stem for p in data.glob("*.csv"))
    if not names:
        problems.append(f"no data files in {data}")
    with tempfile.TemporaryDirectory() as tmp:
        run = subprocess.run([sys.executable, str(root / "scripts" / "bench_charts.py"), str(data), tmp],
                             capture_output=True, text=True)
        if run.returncode != 0:
            problems.append(f"bench_charts.py failed ({run.returncode}): {run.stderr.strip()}")
        else:
            for n in names:
                fresh, kept = pathlib.Path(tmp) / f"{n}.svg", charts / f"{n}.svg"
                if not fresh.is_file():
                    problems.append(f"bench_charts.py wrote no {n}.svg")
                elif not kept.is_file():
                    problems.append(f"docs/charts/{n}.svg is not committed (make bench-charts)")
                elif renderer(fresh) != renderer(kept):
                    skipped.append(n)  # another matplotlib draws other bytes: not comparable
                elif fresh.read_bytes() != kept.read_bytes():
                    problems.append(f"docs/charts/{n}.svg is stale against data/{n}.csv (make bench-charts)")

    embedded = {}
    for md in [root / "README.md"] + sorted((root / "docs").rglob("*.md")):
        for n, line in enumerate(md.read_text().split("\n"), 1):
            for m in CHART_LINK.finditer(line):
                target = (md.parent / m.group(1)).resolve()
                embedded.setdefault(str(md.relative_to(root)), set()).add(target.stem)
                if not target.is_file():
                    problems.append(f"{md.relative_to(root)}:{n}: chart {m.group(1)} does not exist")
    for n in names:
        if n not in embedded.get("docs/benchmarks.md", set()):
            problems.append(f"docs/benchmarks.md does not embed charts/{n}.svg")

    passed = f"check_charts: {len(names)} charts rendered, up to date and embedded"
    if skipped:
        passed = (f"check_charts: {len(names)} charts rendered and embedded; not compared with the "
                  f"committed SVGs of {', '.join(skipped)}: drawn by another matplotlib")
    return verdict([f"check_charts: {p}" for p in problems], passed)


if __name__ == "__main__":
    sys.exit(main())
