#!/usr/bin/env bash
# One bounded fuzz run (fuzz/README.md): FUZZER SECONDS CORPUS_DIR SOURCE_DIR. Seeds the
# corpus with the scenarios of examples/ and the tests, fuzzes for SECONDS, and fails on
# any crash, leak, timeout or sanitizer report: libFuzzer then exits non-zero and leaves
# the input as crash-*, leak-* or timeout-* beside the corpus directory.
set -uo pipefail
fuzzer=$1 seconds=$2 corpus=$3 src=$4
mkdir -p "$corpus" || exit 1
cp "$src"/examples/*.rmap "$src"/tests/scenarios/*.rmap "$src"/tests/json/*.rmap "$corpus"/ || exit 1
# -timeout: no single input may take 10 s; -rss_limit_mb: nor 2 GiB. The lines about
# each new input are left out; the final statistics say how many inputs ran.
"$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$(dirname "$corpus")/" "$corpus" 2>&1 | grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|NEW_FUNC|# Uses: |recommended dictionary'
exit "${PIPESTATUS[0]}"
