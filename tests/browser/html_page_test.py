#!/usr/bin/env python3
"""Tests of `rmapkit html`'s page.

  html_page_test.py browser RMAPKIT SCENARIO
      Writes the page of SCENARIO, checks that it names nothing outside itself (no URL,
      no src, no link), and loads it in headless Chromium with #test: the page's
      self-test (view/html/page.js) steps with the buttons and the keyboard, checks that
      what is shown changes, opens a walk, and writes its verdict and every console error
      into the DOM, which Chromium dumps. Passes on "SELFTEST PASS".
  html_page_test.py screenshot RMAPKIT SCENARIO PNG [--step N] [--walk K]
      Writes a screenshot of the page at statement N with frame K's walk open.
  html_page_test.py size RMAPKIT [--statements N] [--limit BYTES]
      The page of a random N-statement scenario stays under BYTES.
  html_page_test.py errors RMAPKIT
      Bad input gets a clear error and exit status 2, and no page.
  html_page_test.py corpus RMAPKIT DIR
      Every scenario of DIR gives a page under every design, as `rmapkit run` exits, with
      a moment a statement and the reports `rmapkit run` prints.

Chromium runs as root only with --no-sandbox (a CI container); every run has a timeout
and its whole process group is killed on expiry, so a hung browser fails the test.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

BROWSER_TIMEOUT = 90  # seconds, per Chromium run


def run(cmd, timeout, **kwargs):
    """Runs @cmd in its own process group; kills the group on timeout."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        sys.exit(f"FAIL: {cmd[0]} did not finish in {timeout} s")
    return proc.returncode, out, err


def write_page(rmapkit, scenario, page, *extra):
    code, _, err = run([rmapkit, "html", scenario, "-o", page, *extra], timeout=300)
    if code != 0:
        sys.exit(f"FAIL: rmapkit html {scenario} exited {code}: {err}")


def chromium(profile, *args):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        sys.exit("FAIL: no chromium on PATH (scripts/install-deps.sh installs Debian's chromium)")
    cmd = [browser, "--headless", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
           "--no-default-browser-check", "--disable-extensions", f"--user-data-dir={profile}",
           "--virtual-time-budget=20000", "--window-size=1600,1000", "--hide-scrollbars"]
    if os.geteuid() == 0:
        cmd.append("--no-sandbox")
    return run(cmd + list(args), timeout=BROWSER_TIMEOUT)


def browser_test(args, tmp):
    page = os.path.join(tmp, "page.html")
    write_page(args.rmapkit, args.scenario, page)
    with open(page, encoding="utf-8") as f:
        # An inline SVG's namespaces and DTD are names, not something to load.
        text = re.sub(r'xmlns(:\w+)?="[^"]*"|<!DOCTYPE[^>]*>', "", f.read())
    outside = re.findall(r'https?://|<link\b|<img\b|\ssrc=|@import|url\(', text)
    if outside:
        sys.exit(f"FAIL: the page reaches outside itself: {sorted(set(outside))}")
    code, dom, err = chromium(os.path.join(tmp, "profile"), "--dump-dom", f"file://{page}#test")
    found = re.search(r'<pre id="selftest"[^>]*>(.*?)</pre>', dom, re.S)
    verdict = found.group(1).strip() if found else ""
    print(verdict or "(no verdict)")
    if code != 0 or not verdict.startswith("SELFTEST PASS"):
        noise = ("dbus", "Fontconfig")  # a container without a session bus or fonts.conf
        err = "\n".join(l for l in err.splitlines() if not any(n in l for n in noise))
        print(f"chromium exited {code}; its standard error:\n{err[-4000:]}", file=sys.stderr)
        sys.exit("FAIL: the page's self-test did not pass")


def screenshot(args, tmp):
    page = os.path.join(tmp, "page.html")
    write_page(args.rmapkit, args.scenario, page)
    url = f"file://{page}#step={args.step}" + (f"&walk={args.walk}" if args.walk is not None else "")
    code, _, err = chromium(os.path.join(tmp, "profile"), f"--screenshot={os.path.abspath(args.png)}", url)
    if code != 0 or not os.path.exists(args.png):
        sys.exit(f"FAIL: no screenshot (chromium exited {code}): {err[-4000:]}")


def size_test(args, tmp):
    scenario = os.path.join(tmp, "random.rmap")
    code, text, err = run([args.rmapkit, "gen", "random", "--seed", "1", "--statements", str(args.statements)],
                          timeout=60)
    if code != 0:
        sys.exit(f"FAIL: rmapkit gen random exited {code}: {err}")
    with open(scenario, "w", encoding="utf-8") as f:
        f.write(text)
    page = os.path.join(tmp, "page.html")
    write_page(args.rmapkit, scenario, page, "--stats")
    size = os.path.getsize(page)
    print(f"{args.statements} statements: page of {size} bytes (limit {args.limit})")
    if size >= args.limit:
        sys.exit("FAIL: the page is too large")


def errors_test(args, tmp):
    page = os.path.join(tmp, "page.html")
    bad = os.path.join(tmp, "bad.rmap")
    with open(bad, "w", encoding="utf-8") as f:
        f.write("spawn P\nP: mmap A anon private pages=4\nP: wrte A[0]\n")
    cases = [
        ([os.path.join(tmp, "missing.rmap")], "cannot open"),
        ([bad], "bad.rmap:3:"),
        ([bad, "--design", "linux-0"], "linux-0"),
    ]
    failed = False
    for extra, needle in cases:
        code, _, err = run([args.rmapkit, "html", *extra, "-o", page], timeout=60)
        ok = code == 2 and needle in err and not os.path.exists(page)
        print(f"{'ok' if ok else 'FAIL'}: rmapkit html {' '.join(extra)}: exit {code}: {err.strip()}")
        failed |= not ok
    if failed:
        sys.exit("FAIL: bad input was not reported as it should be")


def designs(rmapkit):
    _, out, _ = run([rmapkit, "html", "--help"], timeout=60)
    found = re.search(r"\{(linux-6[^}]*)\}", out)
    return found.group(1).split(",") if found else ["linux-6"]


def page_data(page):
    """The data of a page written with --no-compress."""
    with open(page, encoding="utf-8") as f:
        text = f.read()
    found = re.search(r'<script type="application/json" id="data">(.*?)</script>', text, re.S)
    return json.loads(found.group(1).replace("<\\/", "</"))


def scenario_statements(path):
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.split("#", 1)[0].strip())


def corpus_test(args, tmp):
    page = os.path.join(tmp, "page.html")
    failed = []
    names = sorted(f for f in os.listdir(args.dir) if f.endswith(".rmap"))
    all_designs = designs(args.rmapkit)
    for name in names:
        scenario = os.path.join(args.dir, name)
        for design in all_designs:
            want, report, _ = run([args.rmapkit, "run", scenario, "--design", design], timeout=120)
            # --no-pictures: the pictures are view/dot.cc's, tested on their own (golden).
            code, _, err = run([args.rmapkit, "html", scenario, "--design", design, "--no-compress",
                                "--no-pictures", "-o", page], timeout=300)
            if code != want or not os.path.exists(page):
                failed.append(f"{name} --design {design}: exit {code} (run exits {want}): {err.strip()}")
                continue
            data = page_data(page)
            os.remove(page)
            shown = "".join(m[3][0] for m in data["moments"] if len(m) > 3 and not m[3][1])
            if want == 0 and shown != report:
                failed.append(f"{name} --design {design}: the page's reports are not what rmapkit run prints")
            if len(data["moments"]) != scenario_statements(scenario) + 1:
                failed.append(f"{name} --design {design}: {len(data['moments'])} moments")
    print(f"{len(names)} scenarios, designs {', '.join(all_designs)}")
    for f in failed:
        print("FAIL:", f)
    if failed:
        sys.exit("FAIL: some scenarios give no page")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("browser")
    b.add_argument("rmapkit")
    b.add_argument("scenario")
    s = sub.add_parser("screenshot")
    s.add_argument("rmapkit")
    s.add_argument("scenario")
    s.add_argument("png")
    s.add_argument("--step", type=int, default=0)
    s.add_argument("--walk", type=int)
    z = sub.add_parser("size")
    z.add_argument("rmapkit")
    z.add_argument("--statements", type=int, default=500)
    z.add_argument("--limit", type=int, default=5_000_000)
    e = sub.add_parser("errors")
    e.add_argument("rmapkit")
    c = sub.add_parser("corpus")
    c.add_argument("rmapkit")
    c.add_argument("dir")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="rmapkit-html-") as tmp:
        {"browser": browser_test, "screenshot": screenshot, "size": size_test, "errors": errors_test,
         "corpus": corpus_test}[args.mode](args, tmp)


if __name__ == "__main__":
    main()
