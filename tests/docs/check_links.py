#!/usr/bin/env python3
"""Finds broken relative links in README.md and the Markdown under docs/.

    check_links.py ROOT

A link is [text](target) or an <img src=...>/<a href=...> outside fenced
code blocks and code spans. Links with a scheme (https:, mailto:) and pure
anchors (#...) are left alone; for the others the path, relative to the
file (or to ROOT when it starts with /), must name an existing file or
directory. Exits 1 listing each broken link as file:line: target.
"""
import pathlib
import re
import sys

LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML = re.compile(r"<(?:a|img)\s[^>]*?(?:href|src)=\"([^\"]+)\"")
CODE_SPAN = re.compile(r"`[^`]*`")


def links(text):
    fenced = False
    for n, line in enumerate(text.split("\n"), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        line = CODE_SPAN.sub("", line)
        for m in LINK.finditer(line):
            yield n, m.group(1)
        for m in HTML.finditer(line):
            yield n, m.group(1)


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    files = [root / "README.md"] + sorted((root / "docs").rglob("*.md"))
    broken, count = [], 0
    for f in files:
        for n, target in links(f.read_text()):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("#"):
                continue
            count += 1
            path = target.split("#", 1)[0].split("?", 1)[0]
            base = root if path.startswith("/") else f.parent
            if not (base / path.lstrip("/")).exists():
                broken.append(f"{f.relative_to(root)}:{n}: {target}")
    for b in broken:
        print(b, file=sys.stderr)
    if broken:
        print(f"check_links: {len(broken)} broken of {count} relative links", file=sys.stderr)
        return 1
    print(f"check_links: {count} relative links in {len(files)} files, none broken")
    return 0


if __name__ == "__main__":
    sys.exit(main())
