#!/usr/bin/env python3
"""Builds docs/walkthrough.md from docs/walkthrough.md.in with rmapkit's own output.

    python3 scripts/walkthrough.py [--rmapkit PATH]           # write the docs
    python3 scripts/walkthrough.py [--rmapkit PATH] --check   # compare, write nothing

The template is Markdown with directives on lines of their own:

    <!-- rmapkit: show examples/fork-cow.rmap --at 5 -->
    <!-- rmapkit: walk examples/fork-cow.rmap --frame 1 | grep -v ^after | head -n 12 -->
    <!-- rmapkit-picture: NAME: show examples/fork-cow.rmap --at 5 -->

`rmapkit:` runs rmapkit with those arguments (from the repository's root, so the paths in
the output are the repository's) and puts the command line and its output in a fenced
block. The output may be narrowed by stages ` | head -n N`, ` | grep -v REGEX` (a basic
regular expression: `\|` is "or") and ` | sed '/REGEX/,$d'` (drop the lines from the first
match on), applied here the way the shell would, so the document shows a command a reader
can paste into a shell. Stages are separated by " | " (with the spaces).

`rmapkit-picture:` draws the same view with `--format svg` into docs/walkthrough/NAME.svg
and puts an image link in the document (the SVG is Graphviz's `dot` output, so a picture
compares equal only with the same Graphviz: Debian's, as scripts/install-deps.sh installs it).
With PICTURES false the directives leave nothing, for a build without `--format svg`.

--check regenerates everything in memory and exits 1 with a unified diff when the
committed docs/walkthrough.md or a picture differs from what this rmapkit prints, or when
docs/walkthrough/ holds a picture no directive makes. Standard library only.
"""
import argparse
import difflib
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEMPLATE = os.path.join("docs", "walkthrough.md.in")
DOC = os.path.join("docs", "walkthrough.md")
PICTURE_DIR = os.path.join("docs", "walkthrough")

# False: leave the pictures out (a build whose show/walk have no `--format svg`).
PICTURES = True

DIRECTIVE = re.compile(r"^<!--\s*rmapkit(-picture)?:\s*(.*?)\s*-->\s*$")
NAME = re.compile(r"^[A-Za-z0-9_-]+$")
SED_CUT = re.compile(r"^/(.*)/,\$d$")  # sed '/REGEX/,$d': drop the lines from the first match on


class TemplateError(Exception):
    pass


def run_rmapkit(tool, args, where):
    r = subprocess.run([tool] + args, cwd=ROOT, capture_output=True, text=True)
    if r.returncode != 0:
        raise TemplateError(f"{where}: rmapkit {shlex.join(args)} exited {r.returncode}:\n{r.stderr}")
    return r.stdout


def narrow(text, stages, where):
    """Applies the `| head -n N` and `| grep -v REGEX` stages of a directive; a cut made
    by head is marked with a last line `...`."""
    lines = text.splitlines()
    cut = False
    for stage in stages:
        words = shlex.split(stage)
        if len(words) == 3 and words[:2] == ["head", "-n"] and words[2].isdigit():
            cut = cut or len(lines) > int(words[2])
            lines = lines[: int(words[2])]
        elif len(words) == 3 and words[:2] == ["grep", "-v"]:
            pattern = re.compile(words[2].replace(r"\|", "|"))
            lines = [line for line in lines if not pattern.search(line)]
        elif len(words) == 2 and words[0] == "sed" and SED_CUT.match(words[1]):
            pattern = re.compile(SED_CUT.match(words[1]).group(1))
            first = next((i for i, line in enumerate(lines) if pattern.search(line)), len(lines))
            lines = lines[:first]
        else:
            raise TemplateError(f"{where}: unknown stage '{stage}' (head -n N, grep -v REGEX, sed '/REGEX/,$d')")
    return "\n".join(lines + (["..."] if cut else [])) + "\n"


def command_block(tool, spec, where):
    parts = [p.strip() for p in spec.split(" | ")]
    args = shlex.split(parts[0])
    out = narrow(run_rmapkit(tool, args, where), parts[1:], where)
    shown = " | ".join(["rmapkit " + parts[0]] + parts[1:])
    return f"```text\n$ {shown}\n{out}```\n"


def picture(tool, spec, where, pictures):
    """The image link for a picture directive; the SVG goes into @pictures (path -> text)."""
    if not PICTURES:
        return ""
    name, _, view = spec.partition(":")
    name = name.strip()
    if not NAME.match(name):
        raise TemplateError(f"{where}: picture name '{name}' must match {NAME.pattern}")
    path = os.path.join(PICTURE_DIR, name + ".svg")
    if path in pictures:
        raise TemplateError(f"{where}: picture {name} is made twice")
    pictures[path] = run_rmapkit(tool, shlex.split(view) + ["--format", "svg"], where)
    return f"\n![rmapkit {view.strip()}](walkthrough/{name}.svg)\n"


def generate(tool):
    """{path relative to ROOT: content} of everything the template makes."""
    with open(os.path.join(ROOT, TEMPLATE), encoding="utf-8") as f:
        template = f.read().splitlines(keepends=True)
    out = []
    pictures = {}
    for n, line in enumerate(template, 1):
        m = DIRECTIVE.match(line)
        if not m:
            out.append(line)
            continue
        where = f"{TEMPLATE}:{n}"
        out.append(picture(tool, m.group(2), where, pictures) if m.group(1) else command_block(tool, m.group(2), where))
    files = {DOC: "".join(out)}
    files.update(pictures)
    return files


def read(path):
    try:
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        return None


def check(files):
    stale = []
    if os.path.isdir(os.path.join(ROOT, PICTURE_DIR)):
        for name in sorted(os.listdir(os.path.join(ROOT, PICTURE_DIR))):
            path = os.path.join(PICTURE_DIR, name)
            if name.endswith(".svg") and path not in files:
                stale.append(path)
    differ = False
    for path, text in files.items():
        old = read(path)
        if old == text:
            continue
        differ = True
        if old is None:
            print(f"{path}: missing (run scripts/walkthrough.py)")
            continue
        sys.stdout.writelines(difflib.unified_diff(old.splitlines(keepends=True), text.splitlines(keepends=True),
                                                   f"{path} (committed)", f"{path} (this build)"))
    for path in stale:
        differ = True
        print(f"{path}: no directive makes this picture any more")
    if differ:
        print("walkthrough: the docs differ from what this rmapkit prints; "
              "run `python3 scripts/walkthrough.py --rmapkit PATH` and commit the result")
        return 1
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rmapkit", default=os.path.join(ROOT, "build", "ci", "tools", "rmapkit", "rmapkit"),
                   help="the rmapkit binary (default: build/ci/tools/rmapkit/rmapkit)")
    p.add_argument("--check", action="store_true", help="compare with the committed docs; write nothing")
    a = p.parse_args()
    tool = os.path.abspath(a.rmapkit)
    if not os.access(tool, os.X_OK):
        sys.exit(f"walkthrough: {a.rmapkit}: not an executable rmapkit (build it, or give --rmapkit PATH)")
    try:
        files = generate(tool)
    except TemplateError as e:
        sys.exit(f"walkthrough: {e}")
    if a.check:
        sys.exit(check(files))
    for path, text in files.items():
        os.makedirs(os.path.dirname(os.path.join(ROOT, path)), exist_ok=True)
        with open(os.path.join(ROOT, path), "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
