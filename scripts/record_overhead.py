#!/usr/bin/env python3
"""What `rmapkit record` costs the three workloads of its tests (docs/rtrace.md, "Recording").

Each workload runs plain and under `rmapkit record` (no cuts, and with cuts every 0.2 s), REPEAT
times each, alternating; a recording of `true` gives the recorder's fixed cost (opening and
closing its perf events). Prints, per workload: the median wall time plain, recorded and
recorded with cuts, the records written, and the slowdown of the workload itself
(recorded minus the fixed cost, over plain). Root only, like the recorder; run it on a quiet
machine.

    scripts/record_overhead.py [--rmapkit build/ci/tools/rmapkit/rmapkit] [--repeat 5]
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

C_UNIT = """#include <stdlib.h>
#include <string.h>
#include <math.h>
double work{0}(int n) {{ double *v = calloc(n, sizeof *v), s = 0;
  for (int j = 0; j < n; j++) v[j] = sin(j + {0});
  for (int j = 0; j < n; j++) s += v[j] * (double)strlen("abc");
  free(v); return s; }}
"""

POOL = """import json, multiprocessing as mp, concurrent.futures as cf
def job(n):
    return len(json.dumps({str(i): [i, i * 0.5, 'x' * (i % 40)] for i in range(n)}))
if __name__ == '__main__':
    with cf.ThreadPoolExecutor(2) as ex: a = list(ex.map(job, [20000] * 4))
    with mp.get_context('fork').Pool(2) as p: b = p.map(job, [20000] * 8)
    print(a[0], b[0])
"""

SERVER = """import socketserver, socket, threading
class H(socketserver.BaseRequestHandler):
    def handle(self):
        buf = bytearray(256 * 1024)
        for i in range(0, len(buf), 4096): buf[i] = 1
        self.request.sendall(self.request.recv(64).upper())
srv = socketserver.ForkingTCPServer(('127.0.0.1', 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
for i in range(100):
    with socket.create_connection(srv.server_address) as c:
        c.sendall(b'ping %d' % i); c.recv(64)
srv.shutdown()
"""


def c_project(root, units=24):
    """A C project of @units files and a main, as the make workload of the tests."""
    d = os.path.join(root, "project")
    os.makedirs(d)
    main = "#include <stdio.h>\n"
    for i in range(units):
        with open(os.path.join(d, f"u{i}.c"), "w") as f:
            f.write(C_UNIT.format(i))
        main += f"double work{i}(int);\n"
    main += "int main(void) { double s = 0;\n"
    main += "".join(f"  s += work{i}(1000);\n" for i in range(units))
    main += '  printf("%f\\n", s); return 0; }\n'
    with open(os.path.join(d, "main.c"), "w") as f:
        f.write(main)
    with open(os.path.join(d, "Makefile"), "w") as f:
        f.write("OBJS := $(patsubst %.c,%.o,$(wildcard *.c))\napp: $(OBJS)\n\t$(CC) -o $@ $(OBJS) -lm\n"
                "%.o: %.c\n\t$(CC) -O2 -c $< -o $@\n")
    return d


def timed(argv, before=None):
    """Wall seconds of @argv (after @before, untimed); its standard error."""
    if before:
        before()
    t0 = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"{' '.join(argv)}: exit {p.returncode}\n{p.stderr}")
    return dt, p.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rmapkit", default="build/ci/tools/rmapkit/rmapkit")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("record_overhead: rmapkit record needs root")
    rmapkit = os.path.abspath(args.rmapkit)
    root = tempfile.mkdtemp(prefix="rmapkit-overhead-")
    try:
        proj = c_project(root)
        pool, server = os.path.join(root, "pool.py"), os.path.join(root, "server.py")
        open(pool, "w").write(POOL)
        open(server, "w").write(SERVER)
        trace = os.path.join(root, "t.rtrace")
        def clean():  # every run of make builds the whole project
            for f in os.listdir(proj):
                if f.endswith(".o") or f == "app":
                    os.remove(os.path.join(proj, f))
        workloads = [("make -j2, 24-file C project", ["make", "-s", "-j2", "-C", proj], clean),
                     ("Python thread pool + fork pool", ["python3", pool], None),
                     ("Python ForkingTCPServer, 100 requests", ["python3", server], None)]
        record = [rmapkit, "record", "-o", trace, "--"]
        cuts = [rmapkit, "record", "--check-every", "0.2", "-o", trace, "--"]
        fixed = statistics.median(timed(record + ["true"])[0] for _ in range(args.repeat))
        print(f"recorder's fixed cost (record -- true): {fixed:.2f} s, median of {args.repeat}")
        print(f"{'workload':<40} {'plain':>7} {'recorded':>9} {'w/ cuts':>8} {'records':>8} {'slowdown':>9}")
        for name, argv, before in workloads:
            plain, rec, rec_cuts, records = [], [], [], 0
            for _ in range(args.repeat):
                plain.append(timed(argv, before)[0])
                dt, err = timed(record + argv, before)
                rec.append(dt)
                m = re.search(r"rmapkit record: (\d+) records", err)
                records = int(m.group(1)) if m else 0
                rec_cuts.append(timed(cuts + argv, before)[0])
            p, r, c = statistics.median(plain), statistics.median(rec), statistics.median(rec_cuts)
            slow = (r - fixed) / p
            print(f"{name:<40} {p:>6.2f}s {r:>8.2f}s {c:>7.2f}s {records:>8} {slow:>8.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
