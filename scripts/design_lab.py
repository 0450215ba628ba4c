#!/usr/bin/env python3
"""Regenerates docs/designs.md and its plots from `rmapkit compare --json` runs.

    python3 scripts/design_lab.py [--rmapkit PATH] [--vs-kernel]

Every number in the document comes from the runs this script makes: the workload
generators (`rmapkit gen ...`) write the scenarios, `rmapkit compare` runs each under every
rmap design. With --vs-kernel (root) the linux-6 design's anon_vma/AVC counts are also
checked against the live kernel's kmem tracepoints (`rmapkit compare --vs-kernel`).
Standard library only; the plots are drawn by gnuplot (Debian's gnuplot-nox).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESIGNS = ["linux-6", "linux-3.19", "linux-2.6.34", "linux-2.6.7", "pte-chain", "legoos"]
FILE_DESIGNS = ["interval-tree", "prio-tree", "list"]
COLORS = {"linux-6": "#1f77b4", "linux-3.19": "#ff7f0e", "linux-2.6.34": "#2ca02c",
          "linux-2.6.7": "#d62728", "pte-chain": "#9467bd", "legoos": "#8c564b",
          "interval-tree": "#1f77b4", "prio-tree": "#d62728", "list": "#7f7f7f"}


def rmapkit(args, tool):
    r = subprocess.run([tool] + args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"rmapkit {' '.join(args)} failed ({r.returncode}):\n{r.stderr}")
    return r.stdout


def compare(gen_args, tool, vs_kernel=False, designs=None, file_designs=None):
    """Generates a scenario and returns (command line, parsed compare JSON)."""
    text = rmapkit(["gen"] + gen_args, tool)
    with tempfile.NamedTemporaryFile("w", suffix=".rmap", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        args = ["compare", "--json"]
        if designs:
            args += ["--designs", ",".join(designs)]
        if file_designs:
            args += ["--file-designs", ",".join(file_designs)]
        if vs_kernel:
            args.append("--vs-kernel")
        out = json.loads(rmapkit(args + [path], tool))
    finally:
        os.unlink(path)
    extra = ""
    if designs:
        extra += " --designs " + ",".join(designs)
    if file_designs:
        extra += " --file-designs " + ",".join(file_designs)
    return "rmapkit gen " + " ".join(gen_args) + " > w.rmap && rmapkit compare w.rmap" + extra, out


def by_design(out):
    return {d["design"]: d for d in out["designs"]}


def obj(d, kind, field):
    for o in d["objects"]:
        if o["type"] == kind:
            return o[field]
    return None


def per_walk(d):
    w = d["walks"]
    return w["entries"] / w["walks"] if w["walks"] else 0.0


def gnuplot_quote(text):
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def plot(path, title, xlabel, ylabel, series, logx=True, logy=True):
    """An SVG line plot drawn by gnuplot. series = {name: [(x, y) or (x, y, low, high)]}: a
    point with low and high gets an error bar (the spread of repeated runs)."""
    lines = ["set terminal svg size 680,420 dynamic font 'sans,11' background '#ffffff'",
             f"set output {gnuplot_quote(path)}",
             f"set title {gnuplot_quote(title)}",
             f"set xlabel {gnuplot_quote(xlabel)}",
             f"set ylabel {gnuplot_quote(ylabel)}",
             "set key outside right top",
             "set grid ytics lc rgb '#dddddd'",
             "set format y '%g'", "set format x '%g'"]
    if logx:
        lines.append("set logscale x")
    if logy:
        lines.append("set logscale y")
    else:
        lines.append("set yrange [0:*]")
    data, plots = [], []
    for i, (name, pts) in enumerate(series.items()):
        pts = [p for p in pts if not logy or p[1] > 0]
        if not pts:
            continue
        block = f"$d{i}"
        data.append(f"{block} << EOD")
        data += [" ".join(f"{v:.6g}" for v in p) for p in pts]
        data.append("EOD")
        color = COLORS.get(name)
        style = f"lc rgb '{color}' " if color else ""
        dash = "dt 2 " if i % 2 else ""
        if len(pts[0]) == 4:
            plots.append(f"{block} using 1:2:3:4 with yerrorlines {style}{dash}lw 2 pt 7 ps 0.5 "
                         f"title {gnuplot_quote(name)}")
        else:
            plots.append(f"{block} using 1:2 with linespoints {style}{dash}lw 2 pt 7 ps 0.5 "
                         f"title {gnuplot_quote(name)}")
    script = "\n".join(data + lines + ["plot " + ", \\\n     ".join(plots)]) + "\n"
    r = subprocess.run(["gnuplot"], input=script, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"gnuplot failed on {path} ({r.returncode}):\n{r.stderr}")


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def fmt(v, digits=2):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = os.path.join(ROOT, "build/release/tools/rmapkit/rmapkit")
    if not os.access(default, os.X_OK):
        default = os.path.join(ROOT, "build/ci/tools/rmapkit/rmapkit")
    ap.add_argument("--rmapkit", default=default)
    ap.add_argument("--vs-kernel", action="store_true", help="also check linux-6 against the kernel (root)")
    a = ap.parse_args()
    tool = a.rmapkit
    if not os.access(tool, os.X_OK):
        sys.exit(f"{tool}: not built (cmake --workflow --preset release)")
    figdir = os.path.join(ROOT, "docs", "designs")
    os.makedirs(figdir, exist_ok=True)
    sections = {}

    # 1. Walk cost vs N for fan-out (Rik van Riel 2010: O(N) with one anon_vma, ~1-2 with chains).
    ns = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    walk = {d: [] for d in DESIGNS}
    rows = []
    cmd = None
    for n in ns:
        cmd, out = compare(["fanout", "--children", str(n), "--pages", "4"], tool)
        bd = by_design(out)
        rows.append([n] + [fmt(per_walk(bd[d])) for d in DESIGNS])
        for d in DESIGNS:
            walk[d].append((n, per_walk(bd[d])))
    plot(os.path.join(figdir, "fanout-walk.svg"), "rmap walk cost, N-way fork fan-out with COW",
             "children N", "entries examined per walk", walk)
    sections["fanout"] = (cmd, table(["N"] + DESIGNS, rows))

    # 2. anon_vma growth vs generations for the serial fork chain (Forrest 2012).
    gens = [10, 50, 100, 200, 500, 1000]
    growth = {d: [] for d in DESIGNS[:4]}
    rows = []
    for g in gens:
        cmd, out = compare(["forkchain", "--generations", str(g), "--pages", "16"], tool, designs=DESIGNS[:4])
        bd = by_design(out)
        row = [g]
        for d in DESIGNS[:4]:
            peak = obj(bd[d], "anon_vma", "peak")
            growth[d].append((g, peak))
            avc = obj(bd[d], "anon_vma_chain", "peak")
            row.append(f"{peak} / {fmt(avc)}")
        rows.append(row)
    plot(os.path.join(figdir, "forkchain-anon_vma.svg"), "anon_vmas alive at the peak, serial fork chain",
             "generations", "anon_vma objects alive (peak)", growth)
    sections["forkchain"] = (cmd, table(["generations"] + [f"{d}: anon_vma / AVC" for d in DESIGNS[:4]], rows))

    # 3. Bytes of rmap metadata per mapping, at each design's peak.
    rows = []
    workloads = [["fanout", "--children", "64", "--pages", "16"], ["forkchain", "--generations", "200", "--pages", "16"],
                 ["buildstorm", "--jobs", "64", "--parallel", "4", "--pages", "16"],
                 ["fanout", "--children", "8", "--vmas", "32", "--pages", "1"]]
    for w in workloads:
        cmd, out = compare(w, tool)
        bd = by_design(out)
        rows.append(["`gen " + " ".join(w) + "`"] +
                    [f"{bd[d]['peak']['bytes'] / max(bd[d]['peak']['anon_mappings'], 1):.1f}" for d in DESIGNS])
    sections["bytes"] = (None, table(["workload"] + DESIGNS, rows))

    # 4. Fault and fork cost of chains vs objects: objects allocated and entries read per fork,
    #    and per write statement, as the region grows.
    rows = []
    fork_alloc = {d: [] for d in DESIGNS}
    for pages in [1, 16, 256, 4096]:
        cmd, out = compare(["fanout", "--children", "16", "--pages", str(pages), "--no-reclaim"], tool)
        bd = by_design(out)
        row = [pages]
        for d in DESIGNS:
            f = bd[d]["statements"]["fork"]
            w = bd[d]["statements"]["write"]  # P's first writes and every child's COW of the region
            per_fork = f["allocated"] / f["count"]
            fork_alloc[d].append((pages, max(per_fork, 0.05)))
            row.append(f"{per_fork:.1f} / {f['upkeep'] / f['count']:.0f} / {f['ns'] / f['count'] / 1000:.0f} µs"
                       f" / {w['ns'] / (w['count'] * pages):.0f} ns")
        rows.append(row)
    plot(os.path.join(figdir, "fork-allocations.svg"), "rmap objects allocated per fork",
             "pages mapped by the forking process", "objects allocated per fork", fork_alloc)
    sections["fork"] = (cmd, table(["pages"] + [f"{d}" for d in DESIGNS], rows))

    # 6. File rmap: the 2.6.6 lists against the 2.6.7 prio tree and today's interval tree, as
    #    the VMAs of one file grow (scattered windows: the objrmap complexity of 2004).
    rows = []
    entries = {f: [] for f in FILE_DESIGNS}
    for procs in [1, 4, 16, 64, 256]:
        w = ["filewindows", "--processes", str(procs), "--windows", "16", "--window-pages", "4", "--pages", "65536"]
        cmd, out = compare(w, tool, designs=["linux-6"], file_designs=FILE_DESIGNS)
        runs = {f: out["designs"][i] for i, f in enumerate(FILE_DESIGNS)}
        row = [procs * 16]
        for f in FILE_DESIGNS:
            d = runs[f]
            entries[f].append((procs * 16, per_walk(d)))
            mm = d["statements"]["mmap"]
            rc = d["statements"]["reclaim"]
            row.append(f"{per_walk(d):.1f} / {mm['upkeep'] / mm['count']:.1f} / {rc['ns'] / 1000:.0f} µs")
        bytes_each = {f: obj(runs[f], [o["type"] for o in runs[f]["objects"]
                                       if o["type"].startswith("vm_area_struct.shared")][0], "bytes")
                      for f in FILE_DESIGNS}
        rows.append(row)
    plot(os.path.join(figdir, "filewindows-walk.svg"), "file rmap walk cost, scattered windows of one file",
             "VMAs mapping the file", "entries examined per walk", entries)
    sections["filewindows"] = (cmd, table(["VMAs of the file"] + FILE_DESIGNS, rows))
    sections["filebytes"] = (None, table(["file design", "bytes per VMA (inside vm_area_struct)"],
                                         [[f, bytes_each[f]] for f in FILE_DESIGNS]))

    # 7. Locks: the work done under the busiest anon_vma lock as the fan-out grows (AIM7, 2010).
    lock_designs = ["linux-6", "linux-2.6.34", "linux-2.6.7"]
    lock_of = {"linux-6": "anon_vma->root->rwsem", "linux-2.6.34": "anon_vma->lock", "linux-2.6.7": "anon_vma->lock"}
    rows = []
    longest = {d: [] for d in lock_designs}
    for n in [1, 4, 16, 64, 256, 1024]:
        cmd, out = compare(["fanout", "--children", str(n), "--pages", "4"], tool, designs=lock_designs)
        bd = by_design(out)
        row = [n]
        for d in lock_designs:
            lk = bd[d]["locks"][lock_of[d]]
            longest[d].append((n, lk["longest"]))
            row.append(f"{lk['longest']} / {lk['hottest_work']} ({lk['hottest_acquisitions']}) / {lk['work']}")
        rows.append(row)
    plot(os.path.join(figdir, "fanout-lock-hold.svg"), "the longest hold of an anon_vma lock, N-way fan-out",
             "children N", "rmap work under one hold", longest)
    sections["locks"] = (cmd, table(["N"] + [f"{d} (`{lock_of[d]}`)" for d in lock_designs], rows))

    # 8. KSM: migrating one KSM page as its sharers grow, flat stable tree against chains (4.13).
    bench = os.path.normpath(os.path.join(os.path.dirname(tool), "..", "..", "bench", "rmapkit_bench"))
    if not os.access(bench, os.X_OK):
        sys.exit(f"{bench}: not built (the benchmarks build beside the tool)")
    r = subprocess.run([bench, "--benchmark_filter=ksm_migrate", "--benchmark_format=json"], capture_output=True,
                       text=True)
    if r.returncode != 0:
        sys.exit(f"{bench} --benchmark_filter=ksm_migrate failed ({r.returncode}):\n{r.stderr}")
    cells = {}
    for b in json.loads(r.stdout)["benchmarks"]:
        _, design, n = b["run_name"].split("/")[:3]
        cells[(int(n), design)] = f"{int(b['mappings'])} / {b['us/migration']:.1f} µs"
    ns_ksm = sorted({n for n, _ in cells})
    rows = [[f"{n:,}"] + [cells[(n, d)] for d in ("ksm-chains", "ksm-flat")] for n in ns_ksm]
    sections["ksm"] = ("rmapkit_bench --benchmark_filter=ksm_migrate", table(["equal pages N", "ksm-chains", "ksm-flat"],
                                                                           rows))
    counters = []
    text = rmapkit(["gen", "ksm", "--pages", "250000", "--children", "3"], tool)
    with tempfile.NamedTemporaryFile("w", suffix=".rmap", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        for d in ("linux-6", "linux-6+ksm-flat"):
            out = subprocess.run([tool, "run", path, "--design", d, "--ksm-counters"], capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"rmapkit run --design {d} failed ({out.returncode}):\n{out.stderr}")
            line = [l for l in out.stderr.splitlines() if l.startswith("ksm line")][-1]
            counters.append([d, "`" + line.split(": ", 1)[1] + "`"])
    finally:
        os.unlink(path)
    sections["ksmcounters"] = (None, table(["design", "KSM counters after the merge"], counters))

    # 5. The linux-6 design against the kernel (kmem tracepoints).
    if a.vs_kernel:
        rows = []
        for w in [["fanout", "--children", str(n), "--vmas", str(v), "--pages", "2", "--no-reclaim"]
                  for n in (1, 8, 32, 128) for v in (1, 3)] + \
                 [["forkchain", "--generations", str(g), "--pages", "16"] for g in (10, 100, 1000)] + \
                 [["buildstorm", "--jobs", "64", "--parallel", "4", "--pages", "8"]]:
            cmd, out = compare(w, tool, vs_kernel=True, designs=["linux-6"])
            k = out["kernel"]
            m = out["designs"][0]
            rows.append(["`gen " + " ".join(w) + "`",
                         f"{k['anon_vma']['allocated']} / {k['anon_vma_chain']['allocated']}",
                         f"{obj(m, 'anon_vma', 'allocated')} / {obj(m, 'anon_vma_chain', 'allocated')}"])
        sections["kernel"] = (None, table(["workload", "kernel: anon_vma / AVC allocated",
                                           "linux-6 model: anon_vma / AVC allocated"], rows))

    template = open(os.path.join(ROOT, "docs", "designs.md.in")).read()
    doc = template
    for key, (cmd, tab) in sections.items():
        doc = doc.replace("{{" + key + "}}", tab)
    if "kernel" not in sections:
        doc = doc.replace("{{kernel}}", "(run `python3 scripts/design_lab.py --vs-kernel` as root to fill this table)")
    with open(os.path.join(ROOT, "docs", "designs.md"), "w") as f:
        f.write(doc)
    print("wrote docs/designs.md and docs/designs/*.svg")


if __name__ == "__main__":
    main()
