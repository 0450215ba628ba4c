#!/usr/bin/env python3
"""Regenerates docs/designs.md and its plots from `rmapkit compare --json` runs.

    python3 scripts/design_lab.py [--rmapkit PATH] [--vs-kernel] [--check]

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
          "interval-tree": "#1f77b4", "prio-tree": "#d62728", "list": "#7f7f7f",
          "baseline: read the PTEs": "#000000", "baseline: from the VMAs": "#7f7f7f",
          "floor: the walk protocol": "#e377c2", "floor: the AVC interval tree": "#17becf",
          "kernel (fork(2) in the agent)": "#000000", "kernel (the same statements)": "#000000"}


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


def plot(path, title, xlabel, ylabel, series, logx=True, logy=True, xtics=None):
    """An SVG line plot drawn by gnuplot. series = {name: [(x, y) or (x, y, low, high)]}: a
    point with low and high gets an error bar (the spread of repeated runs). The plot's data
    is written beside it (NAME.json), so --check can redraw it and compare."""
    spec = {"title": title, "xlabel": xlabel, "ylabel": ylabel, "logx": logx, "logy": logy,
            "series": {k: [list(p) for p in v] for k, v in series.items()}}
    if xtics:
        spec["xtics"] = xtics  # names for x = 1, 2, ... (categories, not numbers)
    with open(os.path.splitext(path)[0] + ".json", "w") as f:
        f.write(dump_spec(spec))
    render(path, spec)


def dump_spec(spec):
    """A plot's data as JSON, one series per line; series keep their order (it sets the
    colours, the dashes and the key)."""
    head = {k: v for k, v in spec.items() if k != "series"}
    lines = [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    series = [f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in spec["series"].items()]
    return "{\n" + "\n".join(lines) + '\n "series": {\n' + ",\n".join(series) + "\n }\n}\n"


def render(path, spec):
    """Draws the plot of @spec (what plot() records) into @path with gnuplot."""
    title, xlabel, ylabel = spec["title"], spec["xlabel"], spec["ylabel"]
    logx, logy, series = spec["logx"], spec["logy"], spec["series"]
    lines = ["set terminal svg size 680,420 dynamic noenhanced font 'sans,11' background '#ffffff'",
             f"set output {gnuplot_quote(path)}",
             f"set title {gnuplot_quote(title)}",
             f"set xlabel {gnuplot_quote(xlabel)}",
             f"set ylabel {gnuplot_quote(ylabel)}",
             "set key outside right top",
             "set grid ytics lc rgb '#dddddd'",
             "set format y '%g'", "set format x '%g'"]
    if logx:
        lines.append("set logscale x")
    if spec.get("xtics"):
        names = spec["xtics"]
        lines.append("set xtics (" + ", ".join(f"{gnuplot_quote(n)} {i + 1}" for i, n in enumerate(names)) + ")")
        lines.append(f"set xrange [0.5:{len(names) + 0.5}]")
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


FOLIO_SIZES = [("order 0", "order0", "none"), ("64 KiB", "64k", "64k"), ("PMD (2 MiB)", "pmd", "2m")]


def compare_file(path, tool, designs):
    return json.loads(rmapkit(["compare", "--json", "--designs", ",".join(designs), path], tool))


def lab_folios(tool, figdir):
    """10. Large folios: the bench scenarios thp-order0/64k/pmd (four 2 MiB regions faulted,
    forked, one page each copied by the child, the child's exit, munmap), and one 2 MiB
    region written, forked and reclaimed, under each design."""
    rows = []
    for label, bench, size in FOLIO_SIZES:
        bd = by_design(compare_file(os.path.join(ROOT, "bench", "scenarios", f"thp-{bench}.rmap"), tool,
                                    DESIGNS))
        text = (f"thp anon={size}\nspawn P\nP: mmap A anon private pages=512 huge\nP: write A\nP: fork Q\n"
                "reclaim\ncheck\n")
        with tempfile.NamedTemporaryFile("w", suffix=".rmap", delete=False) as f:
            f.write(text)
            path = f.name
        try:
            rd = by_design(compare_file(path, tool, DESIGNS))
        finally:
            os.unlink(path)
        for d in DESIGNS:
            st = bd[d]["statements"]
            peak = bd[d]["peak"]
            w = rd[d]["walks"]
            rows.append([label, d,
                         f"{peak['bytes'] / max(peak['anon_mappings'], 1):.2f}",
                         f"{st['fork']['allocated']}",
                         f"{st['write']['ns'] / (4 * 512 + 4):.0f}",
                         f"{st['fork']['ns'] / 1000:.0f}",
                         f"{st['exit']['ns'] / 1000:.0f}",
                         f"{st['munmap']['ns'] / st['munmap']['count'] / 1000:.0f}",
                         f"{w['walks']} / {w['vmas_visited']} / {w['ptes_examined']}"])
    return {"folios": ("rmapkit compare bench/scenarios/thp-{order0,64k,pmd}.rmap",
                       table(["folios", "design", "rmap bytes per mapped 4 KiB", "objects allocated by fork",
                              "write, ns per 4 KiB", "fork µs", "exit µs", "munmap µs per 2 MiB",
                              "reclaim of 2 MiB in 2 processes: walks / VMAs visited / PTEs examined"], rows))}


FOLIO_REPEAT = 7
KERNEL_FOLIOS = "kernel (the same statements)"


def lab_folio_curves(tool, figdir, vs_kernel):
    """10b. Large folios drawn: write (fault) cost per 4 KiB, fork and exit of the four 2 MiB
    regions of bench/scenarios/thp-{order0,64k,pmd}.rmap, by folio size, every design (and the
    kernel's, timed on the same statements by `bench --kernel-only`, with --vs-kernel): the
    median and spread of FOLIO_REPEAT rounds. A round runs every size under every design
    once, so that a drift of the machine's speed over minutes (up to 2x on a VM) falls on
    every point alike instead of bending the curves; each sample is the second of two runs in
    one process (the first warms the frame memory and the caches)."""
    pages = 4 * 512 + 4  # the statements' writes: four regions whole, one page of each again
    measures = [("write", "folio-write.svg", "write (fault) cost per 4 KiB by folio size", "ns per 4 KiB written",
                 lambda ns: ns / pages),
                ("fork", "folio-fork.svg", "fork of four 2 MiB regions by folio size", "µs per fork",
                 lambda ns: ns / 1000),
                ("exit", "folio-exit.svg", "exit of the child that shares them, by folio size", "µs per exit",
                 lambda ns: ns / 1000)]
    who = DESIGNS + ([KERNEL_FOLIOS] if vs_kernel else [])
    samples = {(x, w): {m[0]: [] for m in measures} for x in range(1, len(FOLIO_SIZES) + 1) for w in who}
    for _ in range(FOLIO_REPEAT):
        for x, (_, bench, _) in enumerate(FOLIO_SIZES, start=1):
            path = os.path.join(ROOT, "bench", "scenarios", f"thp-{bench}.rmap")
            for w in who:
                kernel = w == KERNEL_FOLIOS
                kinds, side = bench_json(tool, path, None if kernel else w, 2), "kernel" if kernel else "model"
                for kind, _, _, _, unit in measures:
                    samples[(x, w)][kind].append(unit(kinds[kind][side]["runs_ns"][-1]))
    names = [f[0] for f in FOLIO_SIZES]
    for kind, svg, title, ylabel, _ in measures:
        series = {w: [(x,) + spread(samples[(x, w)][kind]) for x in range(1, len(names) + 1)] for w in who}
        plot(os.path.join(figdir, svg), f"{title} (median, min..max of {FOLIO_REPEAT} rounds)", "folio size",
             ylabel, series, logx=False, logy=True, xtics=names)
    rows = []
    for x, label in enumerate(names, start=1):
        for w in who:
            cells = [spread(samples[(x, w)][m[0]]) for m in measures]
            rows.append([label, "kernel" if w == KERNEL_FOLIOS else w] +
                        [f"{med:.0f} ({lo:.0f}..{hi:.0f})" for med, lo, hi in cells])
    header = ["folios", "design", "write ns per 4 KiB", "fork µs", "exit µs"]
    return {"foliocurves": (f"{FOLIO_REPEAT} rounds of rmapkit bench --json --repeat 2 --design D "
                            "bench/scenarios/thp-{order0,64k,pmd}.rmap", table(header, rows))}


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


def lab_fanout(tool, figdir):
    """1. Walk cost vs N for fan-out (Rik van Riel 2010: O(N) with one anon_vma, ~1-2 with chains)."""
    walk = {d: [] for d in DESIGNS}
    rows = []
    cmd = None
    for n in [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]:
        cmd, out = compare(["fanout", "--children", str(n), "--pages", "4"], tool)
        bd = by_design(out)
        rows.append([n] + [fmt(per_walk(bd[d])) for d in DESIGNS])
        for d in DESIGNS:
            walk[d].append((n, per_walk(bd[d])))
    plot(os.path.join(figdir, "fanout-walk.svg"), "rmap walk cost, N-way fork fan-out with COW",
         "children N", "entries examined per walk", walk)
    return {"fanout": (cmd, table(["N"] + DESIGNS, rows))}


def lab_forkchain(tool, figdir):
    """2. anon_vma growth vs generations for the serial fork chain (Forrest 2012)."""
    growth = {d: [] for d in DESIGNS[:4]}
    rows = []
    cmd = None
    for g in [10, 50, 100, 200, 500, 1000]:
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
    return {"forkchain": (cmd, table(["generations"] + [f"{d}: anon_vma / AVC" for d in DESIGNS[:4]], rows))}


def lab_bytes(tool, figdir):
    """3. Bytes of rmap metadata per mapping at each design's peak, and against processes."""
    rows = []
    workloads = [["fanout", "--children", "64", "--pages", "16"], ["forkchain", "--generations", "200", "--pages", "16"],
                 ["buildstorm", "--jobs", "64", "--parallel", "4", "--pages", "16"],
                 ["fanout", "--children", "8", "--vmas", "32", "--pages", "1"]]
    for w in workloads:
        _, out = compare(w, tool)
        bd = by_design(out)
        rows.append(["`gen " + " ".join(w) + "`"] +
                    [f"{bd[d]['peak']['bytes'] / max(bd[d]['peak']['anon_mappings'], 1):.1f}" for d in DESIGNS])
    total = {d: [] for d in DESIGNS}
    procs_rows = []
    cmd = None
    for n in [1, 4, 16, 64, 256, 1024]:
        cmd, out = compare(["fanout", "--children", str(n), "--pages", "16", "--no-reclaim"], tool)
        bd = by_design(out)
        procs_rows.append([n + 1] + [f"{bd[d]['peak']['bytes']:,}" for d in DESIGNS])
        for d in DESIGNS:
            total[d].append((n + 1, bd[d]["peak"]["bytes"]))
    plot(os.path.join(figdir, "bytes-processes.svg"), "rmap metadata at the peak, fan-out of 16 written pages",
         "processes", "bytes of rmap metadata", total)
    return {"bytes": (None, table(["workload"] + DESIGNS, rows)),
            "bytesprocs": (cmd, table(["processes"] + DESIGNS, procs_rows))}


def lab_fork(tool, figdir):
    """4. Objects allocated and entries read per fork, and time per page written, as the region grows."""
    rows = []
    fork_alloc = {d: [] for d in DESIGNS}
    cmd = None
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
    return {"fork": (cmd, table(["pages"] + [f"{d}" for d in DESIGNS], rows))}


def lab_filewindows(tool, figdir):
    """6. File rmap: lists against the prio tree and the interval tree as a file's VMAs grow."""
    rows = []
    entries = {f: [] for f in FILE_DESIGNS}
    cmd = None
    bytes_each = {}
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
    return {"filewindows": (cmd, table(["VMAs of the file"] + FILE_DESIGNS, rows)),
            "filebytes": (None, table(["file design", "bytes per VMA (inside vm_area_struct)"],
                                      [[f, bytes_each[f]] for f in FILE_DESIGNS]))}


def lab_locks(tool, figdir):
    """7. Locks: the work done under the busiest anon_vma lock as the fan-out grows (AIM7, 2010)."""
    lock_designs = ["linux-6", "linux-2.6.34", "linux-2.6.7"]
    lock_of = {"linux-6": "anon_vma->root->rwsem", "linux-2.6.34": "anon_vma->lock", "linux-2.6.7": "anon_vma->lock"}
    rows = []
    longest = {d: [] for d in lock_designs}
    cmd = None
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
    return {"locks": (cmd, table(["N"] + [f"{d} (`{lock_of[d]}`)" for d in lock_designs], rows))}


# The labs whose plots count objects and entries (no clock): --check recomputes them.
COUNTED = [lab_fanout, lab_forkchain, lab_bytes, lab_fork, lab_filewindows, lab_locks]


def bench_tool(tool):
    bench = os.path.normpath(os.path.join(os.path.dirname(tool), "..", "..", "bench", "rmapkit_bench"))
    if not os.access(bench, os.X_OK):
        sys.exit(f"{bench}: not built (the benchmarks build beside the tool)")
    return bench


def google_bench(tool, pattern, repetitions=1):
    """rmapkit_bench's runs of the benchmarks matching @pattern: [(name parts, run record)]."""
    args = [bench_tool(tool), f"--benchmark_filter={pattern}", "--benchmark_format=json"]
    if repetitions > 1:
        args += [f"--benchmark_repetitions={repetitions}", "--benchmark_report_aggregates_only=false"]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"rmapkit_bench --benchmark_filter={pattern} failed ({r.returncode}):\n{r.stderr}")
    return [(b["run_name"].split("/"), b) for b in json.loads(r.stdout)["benchmarks"] if b.get("run_type") != "aggregate"]


def spread(values):
    """(median, min, max) of repeated measurements."""
    v = sorted(values)
    return v[len(v) // 2], v[0], v[-1]


def lab_ksm(tool, figdir):
    """8. KSM: migrating one KSM page as its sharers grow, flat stable tree against chains (4.13)."""
    cells = {}
    for name, b in google_bench(tool, "ksm_migrate"):
        _, design, n = name[:3]
        cells[(int(n), design)] = f"{int(b['mappings'])} / {b['us/migration']:.1f} µs"
    ns_ksm = sorted({n for n, _ in cells})
    rows = [[f"{n:,}"] + [cells[(n, d)] for d in ("ksm-chains", "ksm-flat")] for n in ns_ksm]
    out = {"ksm": ("rmapkit_bench --benchmark_filter=ksm_migrate",
                   table(["equal pages N", "ksm-chains", "ksm-flat"], rows))}
    counters = []
    text = rmapkit(["gen", "ksm", "--pages", "250000", "--children", "3"], tool)
    with tempfile.NamedTemporaryFile("w", suffix=".rmap", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        for d in ("linux-6", "linux-6+ksm-flat"):
            run = subprocess.run([tool, "run", path, "--design", d, "--ksm-counters"], capture_output=True, text=True)
            if run.returncode != 0:
                sys.exit(f"rmapkit run --design {d} failed ({run.returncode}):\n{run.stderr}")
            line = [ln for ln in run.stderr.splitlines() if ln.startswith("ksm line")][-1]
            counters.append([d, "`" + line.split(": ", 1)[1] + "`"])
    finally:
        os.unlink(path)
    out["ksmcounters"] = (None, table(["design", "KSM counters after the merge"], counters))
    return out


def lab_walktime(tool, figdir):
    """9a. Walk time per mapping against sharers, every anonymous design, against two
    baselines and the walk protocol's floor measured beside it and, where the benchmark can
    do it, the design's own floor; three repetitions of each benchmark."""
    runs, base, vbase, proto, own = {}, {}, {}, {}, {}
    for name, b in google_bench(tool, "walk_vs_baseline/anon/", repetitions=3):
        _, _, design, k = name[:4]
        runs.setdefault((design, int(k)), []).append(b["ns/mapping"])
        base.setdefault(int(k), []).append(b["baseline ns/mapping"])
        vbase.setdefault(int(k), []).append(b["vma baseline ns/mapping"])
        proto.setdefault(int(k), []).append(b["protocol floor ns/mapping"])
        if "design floor ns/mapping" in b:
            own.setdefault((design, int(k)), []).append(b["design floor ns/mapping"])
    ks = sorted(base)
    med = {k: (spread(base[k])[0], spread(vbase[k])[0], spread(proto[k])[0]) for k in ks}
    series = {d: [(k,) + spread(runs[(d, k)]) for k in ks] for d in DESIGNS}
    series["baseline: read the PTEs"] = [(k,) + spread(base[k]) for k in ks]
    series["baseline: from the VMAs"] = [(k,) + spread(vbase[k]) for k in ks]
    series["floor: the walk protocol"] = [(k,) + spread(proto[k]) for k in ks]
    series["floor: the AVC interval tree"] = [(k,) + spread(own[("linux-6", k)]) for k in ks]
    plot(os.path.join(figdir, "walk-time.svg"), "rmap walk time per mapping (median, min..max of 3)",
         "mappings of the page (sharers)", "ns per mapping", series)

    def cell(d, k):
        t = spread(runs[(d, k)])[0]
        mine = f" / {t / spread(own[(d, k)])[0]:.1f}×" if (d, k) in own else ""
        return f"{t:.1f} ({t / med[k][0]:.1f}× / {t / med[k][2]:.1f}×{mine})"
    rows = [[k] + [cell(d, k) for d in DESIGNS] + [f"{med[k][0]:.1f} / {med[k][1]:.1f} / {med[k][2]:.1f}"]
            for k in ks]
    return {"walktime": ("rmapkit_bench --benchmark_filter=walk_vs_baseline/anon/ --benchmark_repetitions=3",
                         table(["sharers"] + DESIGNS + ["floors: PTEs / from the VMAs / protocol"], rows))}


def bench_json(tool, path, design, repeat, vs_kernel=False):
    """`rmapkit bench --json` of @path by statement kind; @design None times the kernel alone."""
    side = ["--design", design] + (["--vs-kernel"] if vs_kernel else []) if design else ["--kernel-only"]
    args = ["bench", "--json", "--repeat", str(repeat)] + side
    out = json.loads(rmapkit(args + [path], tool))
    return {k["kind"]: k for k in out["kinds"]}


def lab_forkdepth(tool, figdir, vs_kernel):
    """9b. Fork cost against fork-chain depth, every design, five runs each (and the kernel's)."""
    series = {d: [] for d in DESIGNS}
    kernel = []
    rows = []
    cmd = None
    for g in [10, 50, 100, 200, 500]:
        gen = ["forkchain", "--generations", str(g), "--pages", "16"]
        cmd = "rmapkit gen " + " ".join(gen) + " > w.rmap && rmapkit bench --repeat 5 --design D w.rmap"
        with tempfile.NamedTemporaryFile("w", suffix=".rmap", delete=False) as f:
            f.write(rmapkit(["gen"] + gen, tool))
            path = f.name
        try:
            row = [g]
            for d in DESIGNS:
                fork = bench_json(tool, path, d, 5, vs_kernel and d == "linux-6")["fork"]
                per = [ns / fork["count"] / 1000 for ns in fork["model"]["runs_ns"]]
                series[d].append((g,) + spread(per))
                row.append(f"{spread(per)[0]:.1f}")
                if "kernel" in fork:
                    kper = [ns / fork["count"] / 1000 for ns in fork["kernel"]["runs_ns"]]
                    kernel.append((g,) + spread(kper))
            if kernel and kernel[-1][0] == g:
                row.append(f"{kernel[-1][1]:.1f}")
            rows.append(row)
        finally:
            os.unlink(path)
    if kernel:
        series["kernel (fork(2) in the agent)"] = kernel
    plot(os.path.join(figdir, "fork-depth.svg"), "fork cost along a serial fork chain (median, min..max of 5)",
         "generations", "µs per fork", series)
    header = ["generations"] + [f"{d} µs/fork" for d in DESIGNS] + (["kernel µs/fork"] if kernel else [])
    return {"forkdepth": (cmd, table(header, rows))}


def lab_faultcost(tool, figdir):
    """9c. Fault cost per design: first write, COW copy and COW reuse of 4,096 pages, three
    repetitions of each benchmark."""
    runs = {}
    for name, b in google_bench(tool, "^(anon_fault|cow_copy|cow_reuse)/", repetitions=3):
        kind, design = name[:2]
        runs.setdefault((kind, design), []).append(b["ns/page"])
    kinds = ["anon_fault", "cow_copy", "cow_reuse"]
    series = {}
    for i, k in enumerate(kinds):
        series[k] = [(j + 1,) + spread(runs[(k, d)]) for j, d in enumerate(DESIGNS)]
    plot(os.path.join(figdir, "fault-cost.svg"), "fault cost per design (median, min..max of 3)", "design",
         "ns per page", series, logx=False, logy=False, xtics=DESIGNS)
    rows = [[d] + [f"{spread(runs[(k, d)])[0]:.1f} ({spread(runs[(k, d)])[1]:.1f}..{spread(runs[(k, d)])[2]:.1f})"
                   for k in kinds] for d in DESIGNS]
    return {"faultcost": ("rmapkit_bench --benchmark_filter='^(anon_fault|cow_copy|cow_reuse)/' "
                          "--benchmark_repetitions=3", table(["design"] + [f"{k} ns/page" for k in kinds], rows))}


def lab_kernel(tool):
    """5. The linux-6 design against the kernel (kmem tracepoints)."""
    rows = []
    for w in [["fanout", "--children", str(n), "--vmas", str(v), "--pages", "2", "--no-reclaim"]
              for n in (1, 8, 32, 128) for v in (1, 3)] + \
             [["forkchain", "--generations", str(g), "--pages", "16"] for g in (10, 100, 1000)] + \
             [["buildstorm", "--jobs", "64", "--parallel", "4", "--pages", "8"]]:
        _, out = compare(w, tool, vs_kernel=True, designs=["linux-6"])
        k = out["kernel"]
        m = out["designs"][0]
        rows.append(["`gen " + " ".join(w) + "`",
                     f"{k['anon_vma']['allocated']} / {k['anon_vma_chain']['allocated']}",
                     f"{obj(m, 'anon_vma', 'allocated')} / {obj(m, 'anon_vma_chain', 'allocated')}"])
    return {"kernel": (None, table(["workload", "kernel: anon_vma / AVC allocated",
                                    "linux-6 model: anon_vma / AVC allocated"], rows))}


def check(tool, figdir):
    """Every committed plot is what gnuplot draws from its committed data, and the counted
    plots' data is what this build's rmapkit measures. Returns the differences."""
    bad = []
    with tempfile.TemporaryDirectory() as tmp:
        specs = sorted(f for f in os.listdir(figdir) if f.endswith(".json"))
        svgs = sorted(f for f in os.listdir(figdir) if f.endswith(".svg"))
        if [os.path.splitext(f)[0] for f in specs] != [os.path.splitext(f)[0] for f in svgs]:
            bad.append(f"docs/designs: plots {svgs} and their data {specs} do not pair up")
        for spec in specs:
            svg = os.path.splitext(spec)[0] + ".svg"
            render(os.path.join(tmp, svg), json.load(open(os.path.join(figdir, spec))))
            if not os.path.exists(os.path.join(figdir, svg)) or \
                    open(os.path.join(tmp, svg), "rb").read() != open(os.path.join(figdir, svg), "rb").read():
                bad.append(f"docs/designs/{svg}: not what gnuplot draws from {spec}")
        fresh = os.path.join(tmp, "fresh")
        os.makedirs(fresh)
        for lab in COUNTED:
            lab(tool, fresh)
        for spec in sorted(os.listdir(fresh)):
            if not spec.endswith(".json"):
                continue
            now = json.load(open(os.path.join(fresh, spec)))
            committed = os.path.join(figdir, spec)
            if not os.path.exists(committed) or json.load(open(committed)) != now:
                bad.append(f"docs/designs/{spec}: this build measures other figures (python3 scripts/design_lab.py)")
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = os.path.join(ROOT, "build/release/tools/rmapkit/rmapkit")
    if not os.access(default, os.X_OK):
        default = os.path.join(ROOT, "build/ci/tools/rmapkit/rmapkit")
    ap.add_argument("--rmapkit", default=default)
    ap.add_argument("--vs-kernel", action="store_true", help="also check linux-6 against the kernel (root)")
    ap.add_argument("--check", action="store_true",
                    help="change nothing: fail if a plot is stale (redrawn from its data, counted data remeasured)")
    a = ap.parse_args()
    tool = a.rmapkit
    if not os.access(tool, os.X_OK):
        sys.exit(f"{tool}: not built (cmake --workflow --preset release)")
    figdir = os.path.join(ROOT, "docs", "designs")
    if a.check:
        bad = check(tool, figdir)
        for b in bad:
            print(b, file=sys.stderr)
        sys.exit(1 if bad else 0)
    os.makedirs(figdir, exist_ok=True)
    sections = {}
    for lab in COUNTED + [lab_ksm, lab_walktime, lab_faultcost, lab_folios]:
        sections.update(lab(tool, figdir))
    sections.update(lab_forkdepth(tool, figdir, a.vs_kernel))
    sections.update(lab_folio_curves(tool, figdir, a.vs_kernel))
    if a.vs_kernel:
        sections.update(lab_kernel(tool))

    doc = open(os.path.join(ROOT, "docs", "designs.md.in")).read()
    for key, (cmd, tab) in sections.items():
        doc = doc.replace("{{" + key + "}}", tab)
    if "kernel" not in sections:
        doc = doc.replace("{{kernel}}", "(run `python3 scripts/design_lab.py --vs-kernel` as root to fill this table)")
    with open(os.path.join(ROOT, "docs", "designs.md"), "w") as f:
        f.write(doc)
    print("wrote docs/designs.md and docs/designs/*.svg")


if __name__ == "__main__":
    main()
