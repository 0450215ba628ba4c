#!/usr/bin/env python3
"""A design-lab sweep: `rmapkit compare` over a grid of a workload's parameters, in shards.

    python3 scripts/lab_sweep.py run WORKLOAD --param NAME=V1,V2,... [--param ...]
                                 [--designs a,b,...] [--shard I/N] [--out DIR] [--rmapkit PATH]
    python3 scripts/lab_sweep.py merge DIR... [--x NAME] [--plots DIR]

`run` makes the grid's points (every combination of the values, in the order the parameters
are given), numbers them from 0, and runs its shard's share of them (points I, I+N, ...):
`rmapkit gen WORKLOAD --NAME VALUE ...`, then `rmapkit compare --json` of it under every
design (or --designs), each point into DIR/point-K.json. A point already there is not run
again, so a crashed shard is rerun alone. `merge` reads the points of every folder given
(the shards of one sweep) and prints one Markdown table: per point and design, rmap metadata
bytes per mapping at the peak, entries examined per walk, anon_vmas and AVCs at the peak, and
the model's time. With --plots, it also draws one SVG plot per measure against parameter --x
(default: the first that varies), one line per design and value of the other parameters.
scripts/fuzz-parallel.sh and scripts/fuzz-slurm.sh run sweeps with --sweep (docs/fuzzing.md).
Standard library only; its --plots are drawn by gnuplot (design_lab.plot()).
"""
import argparse
import itertools
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import design_lab  # noqa: E402  (compare(), plot(), table(), the designs' colours)


def parse_shard(text):
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        sys.exit(f"lab_sweep: --shard {text}: not I/N")
    if n <= 0 or not 0 <= i < n:
        sys.exit(f"lab_sweep: --shard {text}: not I/N with 0 <= I < N")
    return i, n


def parse_params(items):
    """--param NAME=V1,V2 ... as [(name, [values])], in the order given."""
    params = []
    for item in items:
        name, _, values = item.partition("=")
        vals = [v for v in values.split(",") if v]
        if not name or not vals:
            sys.exit(f"lab_sweep: --param {item}: not NAME=V1,V2,...")
        if any(name == n for n, _ in params):
            sys.exit(f"lab_sweep: --param {name} is given twice")
        params.append((name, vals))
    return params


def points(params):
    """The grid: one {name: value} per combination, in a fixed order."""
    names = [n for n, _ in params]
    return [dict(zip(names, combo)) for combo in itertools.product(*[v for _, v in params])]


def run(a):
    i, n = parse_shard(a.shard)
    grid = points(parse_params(a.param))
    os.makedirs(a.out, exist_ok=True)
    done = ran = 0
    for k, point in enumerate(grid):
        if k % n != i:
            continue
        path = os.path.join(a.out, f"point-{k}.json")
        if os.path.exists(path):
            done += 1
            continue
        gen = [a.workload] + [arg for name, value in point.items() for arg in (f"--{name}", str(value))]
        designs = a.designs.split(",") if a.designs else None
        command, out = design_lab.compare(gen, a.rmapkit, designs=designs)
        record = {"index": k, "workload": a.workload, "params": point, "command": command, "compare": out}
        with open(path + ".tmp", "w") as f:
            json.dump(record, f)
        os.replace(path + ".tmp", path)  # a point is there whole or not at all
        ran += 1
    print(f"lab_sweep: {len(grid)} points, shard {i}/{n}: {ran} run, {done} done by an earlier run; into {a.out}")


def measures(design):
    """What the table and the plots show of one design's run at one point."""
    peak = design["peak"]
    return {
        "bytes/mapping": peak["bytes"] / max(peak["anon_mappings"], 1),
        "entries/walk": design_lab.per_walk(design),
        "anon_vma peak": design_lab.obj(design, "anon_vma", "peak"),
        "AVC peak": design_lab.obj(design, "anon_vma_chain", "peak"),
        "model ms": design["total_ns"] / 1e6 if "total_ns" in design else None,
    }


def load(dirs):
    seen = {}
    for d in dirs:
        if not os.path.isdir(d):
            sys.exit(f"lab_sweep: {d}: not a folder of sweep points")
        for name in sorted(os.listdir(d)):
            if name.startswith("point-") and name.endswith(".json"):
                with open(os.path.join(d, name)) as f:
                    r = json.load(f)
                seen[(r["workload"], tuple(r["params"].items()))] = r
    if not seen:
        sys.exit("lab_sweep: no sweep points in " + ", ".join(dirs))
    return sorted(seen.values(), key=lambda r: r["index"])


def merge(a):
    records = load(a.dirs)
    names = list(records[0]["params"])
    header = names + ["design"] + list(measures(records[0]["compare"]["designs"][0]))
    rows = []
    for r in records:
        for d in r["compare"]["designs"]:
            rows.append([r["params"][n] for n in names] + [d["design"]] +
                        [design_lab.fmt(v) for v in measures(d).values()])
    print(f"Sweep of `rmapkit gen {records[0]['workload']}` over {', '.join(names)}: {len(records)} points\n")
    print(design_lab.table(header, rows))
    if not a.plots:
        return
    varying = [n for n in names if len({r["params"][n] for r in records}) > 1]
    x = a.x or (varying[0] if varying else names[0])
    if x not in names:
        sys.exit(f"lab_sweep: --x {x}: not a parameter of the sweep ({', '.join(names)})")
    others = [n for n in varying if n != x]
    os.makedirs(a.plots, exist_ok=True)
    for measure in header[len(names) + 1:]:
        series = {}
        for r in records:
            for d in r["compare"]["designs"]:
                v = measures(d)[measure]
                if v is None:
                    continue
                label = " ".join([d["design"]] + [f"{n}={r['params'][n]}" for n in others])
                series.setdefault(label, []).append((float(r["params"][x]), float(v)))
        if not series:
            continue
        slug = measure.replace("/", "-per-").replace(" ", "-")
        path = os.path.join(a.plots, f"{records[0]['workload']}-{slug}.svg")
        design_lab.plot(path, f"{measure}, rmapkit gen {records[0]['workload']}", x, measure,
                        {k: sorted(v) for k, v in series.items()})
        print(f"\n![{measure}]({path})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a shard of the grid")
    r.add_argument("workload", help="a gen workload: fanout, forkchain, fileshare, ksm, buildstorm")
    r.add_argument("--param", action="append", required=True, help="NAME=V1,V2,...: gen's --NAME, each value")
    r.add_argument("--designs", help="designs to compare, comma-separated (default: all)")
    r.add_argument("--shard", default="0/1")
    r.add_argument("--out", default="sweep")
    r.add_argument("--rmapkit", default="rmapkit")
    m = sub.add_parser("merge", help="one table (and plots) from the shards' folders")
    m.add_argument("dirs", nargs="+")
    m.add_argument("--x", help="the parameter along the plots' x axis")
    m.add_argument("--plots", help="folder for the SVG plots")
    a = ap.parse_args()
    run(a) if a.command == "run" else merge(a)


if __name__ == "__main__":
    main()
