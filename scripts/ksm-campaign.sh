#!/usr/bin/env bash
# The KSM-heavy differential campaign (issue 14): COUNT scenarios from
# `rmapkit gen random --ksm-heavy`, seeds FIRST to FIRST+COUNT-1, each run on the model and
# on the live kernel by `rmapkit diff --ksm-counters` (reports and KSM counters compared).
# Every disagreement is kept in OUT (default: ksm-campaign/) as SEED.rmap and SEED.diff.
# Run as root after a build; each scenario takes about a second. Exit 1 when any differs.
#   scripts/ksm-campaign.sh [FIRST [COUNT [STATEMENTS [OUT]]]]
set -uo pipefail
cd "$(dirname "$0")/.."
first=${1:-1}
count=${2:-1000}
statements=${3:-60}
out=${4:-ksm-campaign}
bin=build/ci/tools/rmapkit/rmapkit
[ -x "$bin" ] || bin=build/release/tools/rmapkit/rmapkit
[ -x "$bin" ] || { echo "ksm-campaign: build rmapkit first (cmake --workflow --preset ci)" >&2; exit 2; }
# A copy, so that a rebuild during a long campaign does not pull the binary away.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp "$bin" "$(dirname "$bin")/rmapkit-agent" "$tmp/"
bin=$tmp/rmapkit
mkdir -p "$out"
agree=0 differ=0 failed=0
start=$(date +%s)
for ((seed = first; seed < first + count; seed++)); do
  scn="$out/$seed.rmap"
  "$bin" gen random --ksm-heavy --seed "$seed" --statements "$statements" > "$scn"
  "$bin" diff --ksm-counters "$scn" > "$out/$seed.diff" 2> "$out/$seed.err"
  case $? in
    0) agree=$((agree + 1)); rm -f "$scn" "$out/$seed.diff" "$out/$seed.err" ;;
    1) differ=$((differ + 1)); echo "seed $seed: the model and the kernel differ: $out/$seed.diff" ;;
    *) failed=$((failed + 1)); echo "seed $seed: the run failed: $out/$seed.err" ;;
  esac
done
echo "ksm-campaign: seeds $first..$((first + count - 1)), $statements statements: $agree agree, $differ differ, $failed failed, in $(( $(date +%s) - start )) s"
[ "$differ" -eq 0 ] && [ "$failed" -eq 0 ]
