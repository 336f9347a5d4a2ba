#!/usr/bin/env python3
"""Keeps the code quoted in docs/ the same as the code that is compiled.

    check_quotes.py ROOT          check; exit 1 naming each stale quote
    check_quotes.py ROOT --fix    rewrite the quotes from the code

A quote in a Markdown file under ROOT/docs is a comment line

    <!-- quote: examples/tutorial/chat.hpp broadcast -->

followed by a fenced code block: the block must hold the lines between
`// [broadcast]` and `// [broadcast end]` in that file (relative to ROOT;
`/* [broadcast] */` in C),
with their common indentation removed. A quote naming a missing file or
region is an error too.
"""
import pathlib
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from verdict import verdict  # noqa: E402

QUOTE = re.compile(r"<!-- quote: (\S+) (\S+) -->")


def region(root, path, name):
    f = root / path
    if not f.is_file():
        raise LookupError(f"no file {path}")
    lines = f.read_text().split("\n")
    starts = [i for i, l in enumerate(lines) if l.strip() in (f"// [{name}]", f"/* [{name}] */")]
    ends = [i for i, l in enumerate(lines) if l.strip() in (f"// [{name} end]", f"/* [{name} end] */")]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise LookupError(f"{path}: no single region '// [{name}]' ... '// [{name} end]'")
    body = lines[starts[0] + 1:ends[0]]
    indent = min((len(l) - len(l.lstrip()) for l in body if l.strip()), default=0)
    return [l[indent:] for l in body]


def process(root, md, fix):
    lines = md.read_text().split("\n")
    out, errors, i = [], [], 0
    while i < len(lines):
        out.append(lines[i])
        m = QUOTE.fullmatch(lines[i].strip())
        i += 1
        if not m:
            continue
        where = f"{md.relative_to(root)}:{i}"
        if i >= len(lines) or not lines[i].startswith("```"):
            errors.append(f"{where}: a quote must be followed by a fenced code block")
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if end == len(lines):
            errors.append(f"{where}: unterminated code block")
            break
        try:
            want = region(root, m.group(1), m.group(2))
        except LookupError as e:
            errors.append(f"{where}: {e}")
            out.extend(lines[i:end + 1])
            i = end + 1
            continue
        if lines[i + 1:end] != want:
            errors.append(f"{where}: the quote of {m.group(1)} [{m.group(2)}] differs from the code")
        out.append(lines[i])
        out.extend(want if fix else lines[i + 1:end])
        out.append(lines[end])
        i = end + 1
    if fix:
        md.write_text("\n".join(out))
    return errors


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    fix = "--fix" in sys.argv[2:]
    errors, quotes = [], 0
    for md in sorted((root / "docs").rglob("*.md")):
        quotes += len(QUOTE.findall(md.read_text()))
        errors += process(root, md, fix)
    if fix:
        errors = [e for e in errors if "differs" not in e]
    return verdict(errors, f"check_quotes: {quotes} quotes {'rewritten' if fix else 'match the code'}")


if __name__ == "__main__":
    sys.exit(main())
