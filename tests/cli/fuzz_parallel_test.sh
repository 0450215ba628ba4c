#!/usr/bin/env bash
# scripts/fuzz-parallel.sh on this machine, with the local host (GNU parallel's ":") as the
# only host: a clean campaign of 3 shards agrees and its report counts every scenario once;
# a rerun resumes every shard; a model with a planted fault makes the script fail and the
# report list the minimised cases; a design-lab sweep in 2 shards merges into one table with
# a row per point and design, and its plots. Exit 77 (skipped) when GNU parallel or root is missing.
#   tests/cli/fuzz_parallel_test.sh RMAPKIT
set -uo pipefail
rmapkit=$1
script=$(dirname "$0")/../../scripts/fuzz-parallel.sh
command -v parallel > /dev/null || { echo "skipped: GNU parallel is not installed"; exit 77; }
[ "$(id -u)" -eq 0 ] || { echo "skipped: the kernel back end needs root"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

log=$("$script" --shards 3 --out "$out/clean" --rmapkit "$rmapkit" -- --count 9 --profile plain,files 2>&1) ||
  fail "a clean campaign failed: $log"
grep -q "^fuzz report: 18 scenarios from 3 files" <<< "$log" || fail "the report does not count 18 scenarios: $log"
grep -Eq "^  all +18 +18 +0 +0 +0 +0" <<< "$log" || fail "not every scenario agreed: $log"
for i in 0 1 2; do
  [ -s "$out/clean/shard-$i/results-shard-$i-of-3.jsonl" ] || fail "shard $i left no records"
done

log=$("$script" --shards 3 --out "$out/clean" --rmapkit "$rmapkit" -- --count 9 --profile plain,files 2>&1) ||
  fail "the rerun failed: $log"
[ "$(grep -c "6 done by an earlier run" <<< "$log")" -eq 3 ] || fail "the rerun did not resume every shard: $log"
grep -q "^fuzz report: 18 scenarios from 3 files" <<< "$log" || fail "the rerun counted scenarios twice: $log"

if log=$("$script" --shards 2 --out "$out/planted" --rmapkit "$rmapkit" -- --count 2 --plant-fault read-as-write 2>&1); then
  fail "a planted fault went unnoticed: $log"
fi
[ "$(grep -c "^      case shard-[01]/plain-[01].rmap" <<< "$log")" -eq 2 ] ||
  fail "the report does not list the two minimised cases: $log"
log=$("$script" --sweep --shards 2 --out "$out/sweep" --rmapkit "$rmapkit" -- fanout --param children=1,4,16 \
  --param pages=2 --designs linux-6,pte-chain 2>&1) || fail "the sweep failed: $log"
grep -q '^Sweep of `rmapkit gen fanout` over children, pages: 3 points' <<< "$log" || fail "no merged table: $log"
[ "$(grep -Ec '^\| (1|4|16) \| 2 \| (linux-6|pte-chain) \|' "$out/sweep/sweep.md")" -eq 6 ] ||
  fail "the table does not have a row per point and design: $log"
[ -s "$out/sweep/plots/fanout-bytes-per-mapping.svg" ] || fail "no plot of bytes per mapping"
echo "ok"
