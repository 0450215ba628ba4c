#!/usr/bin/env bash
# Writes NAME.expected beside each NAME.rmap named on the command line, from the live
# kernel (default: every scenario of tests/scenarios/ and tests/scenarios/v2/ that has none
# yet). Run as root after a build of the ci or release preset. Each scenario runs twice, a
# version 2 one (a `thp` line) three times; when the reports differ nothing is written.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/ci/tools/rmapkit/rmapkit
[ -x "$bin" ] || bin=build/release/tools/rmapkit/rmapkit
if [ $# -eq 0 ]; then
  for f in tests/scenarios/*.rmap tests/scenarios/v2/*.rmap; do [ -e "${f%.rmap}.expected" ] || set -- "$@" "$f"; done
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for f in "$@"; do
  "$bin" kernel "$f" > "$tmp/a" || { echo "$f: the run failed" >&2; exit 1; }
  "$bin" kernel "$f" > "$tmp/b" || { echo "$f: the run failed" >&2; exit 1; }
  cmp -s "$tmp/a" "$tmp/b" || { echo "$f: two runs differ; not written" >&2; exit 1; }
  if grep -q '^thp ' "$f"; then
    "$bin" kernel "$f" > "$tmp/b" || { echo "$f: the run failed" >&2; exit 1; }
    cmp -s "$tmp/a" "$tmp/b" || { echo "$f: the third run differs; not written" >&2; exit 1; }
  fi
  cp "$tmp/a" "${f%.rmap}.expected"
  echo "wrote ${f%.rmap}.expected"
done
