#!/usr/bin/env python3
"""Checks that the repository's documentation stays inside the repository.

1. Every relative link in README.md and docs/*.md, and in every Markdown file of the
   repository they link to (transitively: tests/scenarios/COVERAGE.md is checked because
   README.md links it), resolves to a file or directory of the clone, and every #anchor into
   a Markdown file names one of its headings (GitHub's anchor rules).
2. No file of the repository (outside .git) points outside it: no `../shared/` path and no
   research note cited by name or by section sign.

Usage: check-links.py [ROOT]   (ROOT defaults to the parent of this script's directory)
Prints each offence as FILE:LINE: reason and exits 1 when there is one; standard library only.
"""

import os
import re
import subprocess
import sys
import unicodedata

# Written so that this file does not match its own patterns.
SECTION_SIGN = "\u00a7"
OUTSIDE_PATTERNS = [
    (re.compile(r"\.\./shared/"), "points outside the repository (../shared/)"),
    (re.compile(r"(?<![\w/.-])shared/(spec|research)/"), "points at the shared spec or research notes"),
    (re.compile(r"\b(linux-rmap|kernel-oracle|anchors|large-folios|record-replay|ecosystem|architecture-review)"
                r"\.md\b"), "cites a research note that a clone does not have"),
    (re.compile(SECTION_SIGN + r"\s*\d"), "cites a section of a document by section sign"),
]

LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s{0,3}(```|~~~)")


def github_slug(text):
    """The anchor GitHub gives a heading: lower case, markup and punctuation dropped,
    spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)
    text = text.lower()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in " -":
            out.append("-" if ch == " " else ch)
        elif ch == "_" or cat[0] in ("L", "N") or cat == "Mn":
            out.append(ch)
    return "".join(out)


def markdown_lines(path):
    """(line number, text) of the lines outside fenced code blocks."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    fenced = False
    for n, line in enumerate(lines, 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield n, line


def anchors_of(path, cache={}):
    if path not in cache:
        seen = {}
        anchors = set()
        for _, line in markdown_lines(path):
            m = HEADING.match(line)
            if not m:
                continue
            slug = github_slug(m.group(2))
            count = seen.get(slug, 0)
            seen[slug] = count + 1
            anchors.add(slug if count == 0 else f"{slug}-{count}")
        cache[path] = anchors
    return cache[path]


def strip_code_spans(line):
    return re.sub(r"`[^`]*`", "", line)


def check_links(root, md, errors):
    """Checks md's relative links; returns the Markdown files inside root it links to."""
    linked = []
    rel_md = os.path.relpath(md, root)
    for n, line in markdown_lines(md):
        text = strip_code_spans(line)
        targets = [m.group(1) for m in LINK.finditer(text)]
        m = REF_DEF.match(text)
        if m:
            targets.append(m.group(1))
        for target in targets:
            if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("//"):
                continue  # http:, https:, mailto:: not ours to check
            path_part, _, anchor = target.partition("#")
            if path_part:
                dest = os.path.normpath(os.path.join(os.path.dirname(md), path_part))
            else:
                dest = md
            if os.path.commonpath([os.path.realpath(root), os.path.realpath(dest)]) != os.path.realpath(root):
                errors.append(f"{rel_md}:{n}: link '{target}' leaves the repository")
                continue
            if not os.path.exists(dest):
                errors.append(f"{rel_md}:{n}: link '{target}' does not resolve ({os.path.relpath(dest, root)} is missing)")
                continue
            if dest.endswith(".md") and os.path.isfile(dest):
                if dest != md:
                    linked.append(dest)
                if anchor and anchor not in anchors_of(dest):
                    errors.append(f"{rel_md}:{n}: link '{target}': no heading with anchor #{anchor} in "
                                  f"{os.path.relpath(dest, root)}")
    return linked


def tracked_files(root):
    """The repository's files: git's view (tracked, and untracked but not ignored) when git
    is there, so build trees and scratch files do not count; else every file but .git."""
    try:
        out = subprocess.run(["git", "-C", root, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True).stdout
        for rel in sorted(set(out.decode("utf-8", errors="replace").split("\0"))):
            if rel and os.path.isfile(os.path.join(root, rel)):
                yield os.path.join(root, rel)
        return
    except (OSError, subprocess.CalledProcessError):
        pass
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        # .git, and build trees and caches that are not part of the repository.
        dirnames[:] = [d for d in dirnames
                       if d != ".git" and not (rel == "." and (d == "build" or d.startswith("build-")))
                       and d != "__pycache__"]
        for name in filenames:
            yield os.path.join(dirpath, name)


def check_outside_references(root, errors):
    me = os.path.realpath(__file__)
    for path in tracked_files(root):
        if os.path.realpath(path) == me:
            continue
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            continue
        if b"\0" in data:
            continue  # binary
        text = data.decode("utf-8", errors="replace")
        for n, line in enumerate(text.split("\n"), 1):
            for pattern, reason in OUTSIDE_PATTERNS:
                if pattern.search(line):
                    errors.append(f"{os.path.relpath(path, root)}:{n}: {reason}: {line.strip()[:120]}")
                    break


def main():
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), ".."))
    errors = []
    docs = [os.path.join(root, "README.md")]
    docs_dir = os.path.join(root, "docs")
    if os.path.isdir(docs_dir):
        docs += sorted(os.path.join(docs_dir, f) for f in os.listdir(docs_dir) if f.endswith(".md"))
    checked = set()
    queue = [d for d in docs if os.path.isfile(d)]
    while queue:
        md = queue.pop(0)
        if md in checked:
            continue
        checked.add(md)
        for dest in check_links(root, md, errors):
            if dest not in checked and len(checked) < 1000:
                queue.append(dest)
    check_outside_references(root, errors)
    for e in errors:
        print(e)
    if errors:
        print(f"check-links: {len(errors)} problem(s) in {root}", file=sys.stderr)
        return 1
    print(f"check-links: {len(checked)} Markdown files, every relative link resolves; nothing points outside")
    return 0


if __name__ == "__main__":
    sys.exit(main())
