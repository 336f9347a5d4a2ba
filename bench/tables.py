#!/usr/bin/env python3
"""Copies a compare script's Markdown summary through and writes each of its
tables as CSV beside it (sourced as `tables_as_csv` from bench/lib.sh).

    ... | tables.py PREFIX

stdin goes to stdout unchanged; the N-th Markdown table in it (a header
row, a |---| row, body rows) is also written to PREFIX-N.csv: one CSV row
per table row, the cells as printed without Markdown emphasis (**bold**,
`code`), so "1.12 (1.08..1.16)" stays one cell. At the end one line
`# tables as CSV: PREFIX-1.csv ...` names the files. The format of the
charts' data (docs/charts/data/*.csv, scripts/bench_charts.py) is CSV too;
copying a figure from these files into it is by hand, with its series.
"""
import csv
import re
import sys

SEPARATOR = re.compile(r"^\|\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def cells(line):
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    return [re.sub(r"\*\*|`", "", c).strip() for c in body.split("|")]


def main():
    prefix = sys.argv[1]
    written, table, previous = [], None, None

    def flush():
        nonlocal table
        if table:
            name = f"{prefix}-{len(written) + 1}.csv"
            with open(name, "w", newline="") as f:
                csv.writer(f).writerows(table)
            written.append(name)
        table = None

    for line in sys.stdin:
        sys.stdout.write(line)
        sys.stdout.flush()
        text = line.rstrip("\n")
        if SEPARATOR.match(text.strip()) and previous is not None and previous.lstrip().startswith("|"):
            if table is not None:  # a table right after another: its header was taken as a row
                table.pop()
                flush()
            table = [cells(previous)]
        elif table is not None and text.lstrip().startswith("|"):
            table.append(cells(text))
        else:
            flush()
        previous = text
    flush()
    if written:
        print("# tables as CSV: " + " ".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
