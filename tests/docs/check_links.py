#!/usr/bin/env python3
"""Finds broken relative links in README.md and the Markdown under docs/.

    check_links.py ROOT

A link is [text](target) or an <img src=...>/<a href=...> outside fenced
code blocks and code spans. Links with a scheme (https:, mailto:) are left
alone; for the others the path, relative to the file (or to ROOT when it
starts with /), must name an existing file or directory, and an anchor
(file.md#heading, or #heading in the same file) must name a heading of that
Markdown file, spelled as GitHub does (lower case, punctuation other than
- and _ dropped, spaces as -, -1, -2 ... for repeats). Exits 1 listing each
broken link as file:line: target.
"""
import pathlib
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
from verdict import verdict  # noqa: E402

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


def anchors(path, cache={}):
    """The anchors GitHub gives the headings of a Markdown file."""
    if path not in cache:
        seen, out, fenced = {}, set(), False
        for line in path.read_text().split("\n"):
            if line.lstrip().startswith(("```", "~~~")):
                fenced = not fenced
            m = None if fenced else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
            if m:
                slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
                n = seen.get(slug, 0)
                seen[slug] = n + 1
                out.add(slug if n == 0 else f"{slug}-{n}")
        cache[path] = out
    return cache[path]


def main():
    root = pathlib.Path(sys.argv[1]).resolve()
    files = [root / "README.md"] + sorted((root / "docs").rglob("*.md"))
    broken, count = [], 0
    for f in files:
        for n, target in links(f.read_text()):
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
                continue
            count += 1
            path, _, anchor = target.split("?", 1)[0].partition("#")
            base = root if path.startswith("/") else f.parent
            dest = (base / path.lstrip("/")) if path else f
            if not dest.exists():
                broken.append(f"{f.relative_to(root)}:{n}: {target}")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest.resolve()):
                broken.append(f"{f.relative_to(root)}:{n}: {target} (no heading with that anchor)")
    return verdict(broken, f"check_links: {count} relative links in {len(files)} files, none broken",
                   f"check_links: {len(broken)} broken of {count} relative links")


if __name__ == "__main__":
    sys.exit(main())
