#!/usr/bin/env python3
"""`rmapkit ... --json` against its schema and against the text it replaces.

Usage: json_test.py --rmapkit BIN --validator JSONSCHEMA --root SOURCE_DIR [--kernel] [--work DIR]

Runs the built tool with --json on every scenario of the corpus, the examples and the
fixtures here (a scenario the model refuses, one that does not parse, one that does not
resolve), and
 1. validates every document against docs/json/rmapkit-v1.schema.json with the validator
    given (the `jsonschema` command of Debian's python3-jsonschema), in one run;
 2. checks that each document says what the same command prints as text: the reports
    rendered back into the text format equal the text report byte for byte, the errors
    equal the `FILE:LINE: reason` lines, the exit status is the same, and the KSM and
    vmstat counters, lint's counts, compare's and bench's numbers match their text;
 3. checks that the validator rejects documents that break the schema, so that step 1
    cannot pass by accepting anything.
With --kernel (root; the kernel label) the same for `kernel`, `diff`, `compare
--vs-kernel` and `bench --vs-kernel`, and the kernel's reports must equal the corpus's
.expected files. Standard library only; prints what failed and exits 1.
"""

import argparse
import copy
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

failures = []


def fail(what):
    failures.append(what)
    print("FAIL: " + what, file=sys.stderr)


def expect_eq(got, want, what):
    if got != want:
        fail(f"{what}:\n  got:  {got!r}\n  want: {want!r}")


def without_lock_notices(err):
    """Standard error without the notice a kernel run prints while another run holds the
    machine lock: a live message for whoever watches, in neither the text nor the JSON."""
    return "".join(l for l in err.splitlines(keepends=True)
                   if not l.startswith("rmapkit: waiting for the machine lock "))


class Tool:
    def __init__(self, binary):
        self.binary = binary

    def run(self, *args):
        p = subprocess.run([self.binary, *args], capture_output=True, text=True, timeout=600)
        return p.returncode, p.stdout, without_lock_notices(p.stderr)

    def both(self, args, json_args=None):
        """The text run and the --json run of one command: (text, document)."""
        text = self.run(*args)
        code, out, err = self.run(*(json_args or args[:1] + ["--json"] + args[1:]))
        try:
            doc = json.loads(out)
        except json.JSONDecodeError as e:
            fail(f"rmapkit {' '.join(args)} --json: not one JSON document ({e}); stderr: {err}")
            doc = None
        if doc is not None:
            expect_eq(code, text[0], f"exit status of rmapkit {' '.join(args)} --json")
            expect_eq(err, "", f"standard error of rmapkit {' '.join(args)} --json")
        return text, doc


def render_report(r):
    """A report block as the text report prints it (docs/scenario-format.md, "The report")."""
    lines = ["check " + r["label"] if r["label"] else "check"]
    for reg in r["regions"]:
        who = f"{reg['process']} {reg['region']}"
        for v in reg["vmas"]:
            lines.append(f"vma {who} {v['start']} {v['end']} {v['perms']} {v['kind']}")
        for pg in reg["pages"]:
            line = f"page {who} {pg['index']} "
            if pg["state"] == "zero":
                line += "zero"
            elif pg["state"] == "swap":
                line += f"swap={pg['swap']}"
            else:
                line += f"frame={pg['frame']} count={pg['mapcount']}" + "".join(" " + f for f in pg["flags"])
                line += "".join(" " + f for f in pg.get("page_flags", []))
            lines.append(line)
        for v in reg["vmas"]:
            if "smaps_kb" in v:
                lines.append(f"smaps {who} {v['start']} {v['end']}")
                lines += [f"{name + ':':<16}{v['smaps_kb'][name]:>8} kB" for name in SMAPS]
    lines.append("end")
    return "".join(l + "\n" for l in lines)


# The smaps fields a report prints, in the kernel's order (JSON objects have none).
SMAPS = ["Rss", "Pss", "Pss_Dirty", "Shared_Clean", "Shared_Dirty", "Private_Clean", "Private_Dirty", "Referenced",
         "Anonymous", "KSM", "LazyFree", "AnonHugePages", "Swap", "SwapPss", "Locked"]


def render_errors(errors):
    return "".join((f"{e['file']}:{e['line']}: " if e["line"] else f"{e['file']}: ") + e["reason"] + "\n"
                   for e in errors)


KSM = ["pages_shared", "pages_sharing", "pages_unshared", "pages_volatile", "stable_node_chains", "stable_node_dups"]


def render_ksm(events):
    return "".join(f"ksm line {k['line']}: " + " ".join(f"{n}={k[n]}" for n in KSM) + "\n" for k in events)


def check_reports(text_out, doc, what):
    expect_eq("".join(render_report(r) for r in doc["reports"]), text_out, f"{what}: reports against the text")


def check_run(tool, path, docs):
    (code, out, err), doc = tool.both(["run", path])
    if doc is None:
        return
    docs.append((f"run {path}", doc))
    if doc["kind"] == "error":  # the scenario did not load
        expect_eq(render_errors(doc["errors"]), err, f"run {path}: errors against the text")
        return
    check_reports(out, doc, f"run {path}")
    expect_eq(render_errors(doc["errors"]), err, f"run {path}: errors against the text")
    if code != 0:
        return
    # The counters: --ksm-counters and --stats print them to standard error.
    (_, _, err), doc = tool.both(["run", "--ksm-counters", "--stats", path])
    if doc is None:
        return
    docs.append((f"run --ksm-counters --stats {path}", doc))
    stats = doc["stats"]
    k = stats["ksm"]
    want = render_ksm(doc["ksm"]) + "# /proc/vmstat\n"
    want += "".join(f"{n} {v}\n" for n, v in sorted(stats["vmstat"].items()))
    want += "# /sys/kernel/mm/ksm\n" + "".join(f"{n} {k[n]}\n" for n in KSM + ["full_scans"])
    expect_eq(want, err, f"run --ksm-counters --stats {path}: counters against the text")


def check_lint(tool, path, docs):
    (code, out, err), doc = tool.both(["lint", path])
    if doc is None:
        return
    docs.append((f"lint {path}", doc))
    expect_eq(render_errors(doc["errors"]), err, f"lint {path}: errors against the text")
    if code == 0:
        want = (f"{path}: {doc['statements']} statements, {doc['processes']} processes, {doc['files']} files"
                + (", machine-wide (KSM, swap, THP)" if doc["machine_wide"] else "") + "\n")
        expect_eq(want, out, f"lint {path}: counts against the text")


def table_cells(text, label):
    """The cells of the compare table's row @label (its first 40 columns), by column."""
    for line in text.splitlines():
        if len(line) > 40 and line[:40].rstrip() == label:
            return line[40:].split()
    return None


def check_compare(tool, path, docs, extra=()):
    (code, out, err), doc = tool.both(["compare", *extra, path])
    if doc is None:
        return
    docs.append((f"compare {path}", doc))
    expect_eq(render_errors(doc["errors"]), err, f"compare {path}: errors against the text")
    if code != 0:
        return
    designs = doc["designs"]
    expect_eq(table_cells(out, ""), [d["design"] for d in designs], f"compare {path}: designs")
    for label, field in [("  walks", "walks"), ("  entries examined", "entries"), ("  PTEs examined", "ptes_examined")]:
        expect_eq(table_cells(out, label), [str(d["walks"][field]) for d in designs], f"compare {path}: {label.strip()}")
    expect_eq(table_cells(out, "  bytes"), [str(d["peak"]["bytes"]) for d in designs], f"compare {path}: peak bytes")
    for d in designs:
        for o in d["objects"]:
            cells = table_cells(out, "  " + o["type"])
            if cells is None or f"{o['allocated']}/{o['peak']}" not in cells:
                fail(f"compare {path}: {d['design']} {o['type']} {o['allocated']}/{o['peak']} not in the table")


def check_bench(tool, path, docs, extra=()):
    (code, out, err), doc = tool.both(["bench", "--repeat", "2", *extra, path])
    if doc is None:
        return
    docs.append((f"bench {path}", doc))
    expect_eq(render_errors(doc["errors"]), err, f"bench {path}: errors against the text")
    if code != 0:
        return
    rows = [l.split()[:2] for l in out.splitlines()[2:]]
    want = [[k["kind"], str(k["count"])] for k in doc["kinds"]] + [["total", str(doc["total"]["count"])]]
    expect_eq(rows, want, f"bench {path}: kinds and counts against the table")
    for k in doc["kinds"] + [doc["total"]]:
        for side in ("model", "kernel"):
            if side in k:
                s = k[side]
                if len(s["runs_ns"]) != 2 or not s["min_ns"] <= s["median_ns"] <= s["max_ns"]:
                    fail(f"bench {path}: {side} samples {s}")


def check_kernel(tool, path, docs, expected, must_succeed):
    (code, out, err), doc = tool.both(["kernel", "--ksm-counters", "--kmem-counts", path])
    if must_succeed and code != 0:
        fail(f"rmapkit kernel {path}: exit status {code}: {err}")
    if doc is None:
        return
    # The kmem counts are printed at the end of a run that succeeded; their numbers
    # include the runner's own allocations, which the text run and this one need not share.
    kmem = [l for l in err.splitlines() if l.startswith("kmem: ")]
    err = "".join(l + "\n" for l in err.splitlines() if not l.startswith("kmem: "))
    expect_eq("kmem" in doc, bool(kmem), f"kernel {path}: kmem counts in the document as in the text")
    docs.append((f"kernel {path}", doc))
    if doc["kind"] == "error":  # the scenario did not load
        expect_eq(render_errors(doc["errors"]), err, f"kernel {path}: errors against the text")
        return
    check_reports(out, doc, f"kernel {path}")
    got_errors = render_errors(doc["errors"]) + render_ksm(doc.get("ksm", []))
    # Text interleaves the KSM lines with a failure's error: compare them as sets of lines.
    expect_eq(sorted(got_errors.splitlines()), sorted(err.splitlines()), f"kernel {path}: errors and KSM counters")
    if expected is not None:
        expect_eq("".join(render_report(r) for r in doc["reports"]), expected, f"kernel {path}: against .expected")


def check_diff(tool, path, docs):
    (code, out, err), doc = tool.both(["diff", path])
    if doc is None:
        return
    docs.append((f"diff {path}", doc))
    expect_eq(doc.get("unified", ""), out, f"diff {path}: unified diff against the text")
    expect_eq(doc["agree"], out == "", f"diff {path}: agree")


DESIGNS = ["linux-6", "linux-3.19", "linux-2.6.34", "linux-2.6.7", "pte-chain", "legoos"]


def check_show(tool, path, docs, design):
    """show --json lists the frames, VMAs and anon_vmas the text lists, under the same ids."""
    (code, out, err), doc = tool.both(["show", path, "--design", design])
    if doc is None:
        return
    docs.append((f"show {path} --design {design}", doc))
    if code != 0:
        expect_eq(render_errors(doc["errors"]), err, f"show {path}: errors")
        return
    text_frames = [int(m) for m in re.findall(r"^frame (\d+) ", out, re.M)]
    expect_eq([f["frame"] for f in doc["folios"]], text_frames, f"show {path} --design {design}: frames")
    text_vmas = re.findall(r"^  (vma\d+) ", out, re.M)
    expect_eq([v["id"] for m in doc["mms"] for v in m["vmas"]], text_vmas, f"show {path}: VMAs")
    text_avs = [int(m) for m in re.findall(r"^anon_vma av(\d+) ", out, re.M)]
    expect_eq([a["id"] for a in doc["anon_vmas"]], text_avs, f"show {path}: anon_vmas")


def check_walk(tool, path, docs, design, frame):
    """walk --json has the text's steps and counts."""
    (code, out, err), doc = tool.both(["walk", path, "--design", design, "--frame", str(frame), "--op", "referenced"])
    if doc is None:
        return
    docs.append((f"walk {path} --design {design} --frame {frame}", doc))
    if code != 0:
        expect_eq(render_errors(doc["errors"]), err, f"walk {path}: errors")
        return
    m = re.search(r"^counts: walks=(\d+) entries=(\d+) vmas_visited=(\d+) ptes_examined=(\d+) misses=(\d+)$", out, re.M)
    want = dict(zip(["walks", "entries", "vmas_visited", "ptes_examined", "misses"], map(int, m.groups()))) if m else None
    expect_eq(doc["counts"], want, f"walk {path} --design {design}: counts")
    expect_eq(sum(1 for s in doc["steps"] if s["kind"] == "rmap_one"), doc["counts"]["vmas_visited"],
              f"walk {path}: rmap_one steps")


def validate(validator, schema, docs, work):
    """Validates every document in one run of the validator; on failure, names each bad one."""
    paths = []
    for i, (what, doc) in enumerate(docs):
        p = os.path.join(work, f"doc{i}.json")
        with open(p, "w") as f:
            json.dump(doc, f)
        paths.append((what, p))
    args = [validator]
    for _, p in paths:
        args += ["-i", p]
    if subprocess.run(args + [schema], capture_output=True).returncode == 0:
        return
    for what, p in paths:
        r = subprocess.run([validator, "-i", p, schema], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"{what}: does not validate against the schema:\n{r.stdout}{r.stderr}")


def rejected(validator, schema, doc, work):
    p = os.path.join(work, "wrong.json")
    with open(p, "w") as f:
        json.dump(doc, f)
    return subprocess.run([validator, "-i", p, schema], capture_output=True).returncode != 0


def check_rejects(validator, schema, good_run, work):
    """The validator must refuse documents that break the schema in each way it can be broken."""
    def mutated(change):
        d = copy.deepcopy(good_run)
        change(d)
        return d

    def first_frame(d):
        return next(pg for r in d["reports"] for reg in r["regions"] for pg in reg["pages"] if pg["state"] == "frame")

    wrongs = {
        "a map count that is a string": lambda d: first_frame(d).update(mapcount="two"),
        "an unknown page flag": lambda d: first_frame(d)["flags"].append("dirty"),
        "a field the schema does not name": lambda d: first_frame(d).update(pfn=1234),
        "a frame page without its frame": lambda d: first_frame(d).pop("frame"),
        "no errors": lambda d: d.pop("errors"),
        "version 2": lambda d: d.update(version=2),
        "another format": lambda d: d.update(format="other"),
        "an unknown kind": lambda d: d.update(kind="runs"),
        "an error without its line": lambda d: d["errors"].append({"file": "f", "reason": "r"}),
        "permissions that are not /proc's": lambda d: d["reports"][0]["regions"][0]["vmas"][0].update(perms="rw"),
    }
    if rejected(validator, schema, good_run, work):
        fail("the validator rejects a good document")
    for name, change in wrongs.items():
        if not rejected(validator, schema, mutated(change), work):
            fail(f"the validator accepts a document with {name}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rmapkit", required=True)
    ap.add_argument("--validator", required=True)
    ap.add_argument("--root", required=True)
    ap.add_argument("--kernel", action="store_true")
    a = ap.parse_args()
    if not os.access(a.validator, os.X_OK):
        print(f"no JSON Schema validator at {a.validator}: install python3-jsonschema "
              "(scripts/install-deps.sh)", file=sys.stderr)
        return 1
    tool = Tool(a.rmapkit)
    schema = os.path.join(a.root, "docs", "json", "rmapkit-v1.schema.json")
    corpus = sorted(glob.glob(os.path.join(a.root, "tests", "scenarios", "*.rmap")))
    fixtures = {os.path.basename(p)[:-5]: p for p in glob.glob(os.path.join(a.root, "tests", "json", "*.rmap"))}
    examples = sorted(glob.glob(os.path.join(a.root, "examples", "*.rmap")))
    fork_cow = os.path.join(a.root, "examples", "fork-cow.rmap")
    ksm = os.path.join(a.root, "tests", "scenarios", "38_ksm_across_fork.rmap")
    docs = []
    if not a.kernel:
        for path in examples + corpus + sorted(fixtures.values()):
            check_run(tool, path, docs)
            check_lint(tool, path, docs)
        for path in (fork_cow, ksm, fixtures["refused"], fixtures["unresolved"]):
            check_compare(tool, path, docs)
        check_compare(tool, fork_cow, docs, ["--designs", "linux-6,legoos"])
        for path in (fork_cow, fixtures["refused"], fixtures["malformed"]):
            check_bench(tool, path, docs)
        for i, path in enumerate(examples + corpus):
            design = DESIGNS[i % len(DESIGNS)]
            check_show(tool, path, docs, design)
            check_walk(tool, path, docs, design, 1)
        for design in DESIGNS:
            check_show(tool, fork_cow, docs, design)
        check_walk(tool, fork_cow, docs, "linux-6", 99)  # no such frame: an error document
    else:
        if os.geteuid() != 0:
            print("the kernel back end needs root: skipped", file=sys.stderr)
            return 0
        for path, ok in ((fork_cow, True), (ksm, True),
                         (os.path.join(a.root, "tests", "scenarios", "46_pageout_swapin_exclusive.rmap"), True),
                         (fixtures["refused"], False), (fixtures["malformed"], False)):
            exp = path[:-5] + ".expected"
            check_kernel(tool, path, docs, open(exp).read() if os.path.exists(exp) else None, ok)
        for path in (fork_cow, fixtures["refused"]):
            check_diff(tool, path, docs)
        check_compare(tool, fork_cow, docs, ["--vs-kernel", "--designs", "linux-6"])
        check_bench(tool, fork_cow, docs, ["--vs-kernel"])
    kinds = sorted({d["kind"] for _, d in docs})
    print(f"{len(docs)} documents of kinds {', '.join(kinds)}")
    with tempfile.TemporaryDirectory(prefix="rmapkit-json-") as work:
        validate(a.validator, schema, docs, work)
        good_run = next(d for what, d in docs if d["kind"] in ("run", "kernel") and d["reports"] and
                        d["reports"][0]["regions"] and d["reports"][0]["regions"][0]["vmas"])
        check_rejects(a.validator, schema, good_run, work)
        good_show = next((d for what, d in docs if d["kind"] == "show" and d.get("folios")), None)
        for name, change in {} if good_show is None else {
            "a folio mapping the schema does not know": lambda d: d["folios"][0].update(mapping="slab"),
            "a folio field the schema does not name": lambda d: d["folios"][0].update(pfn=7),
            "a VMA without its vm_pgoff": lambda d: d["mms"][0]["vmas"][0].pop("vm_pgoff"),
        }.items():
            bad = copy.deepcopy(good_show)
            change(bad)
            if not rejected(a.validator, schema, bad, work):
                fail(f"the validator accepts a show document with {name}")
    if failures:
        print(f"{len(failures)} failures", file=sys.stderr)
        return 1
    print("every document validates and says what the text says")
    return 0


if __name__ == "__main__":
    sys.exit(main())
