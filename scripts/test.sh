#!/usr/bin/env bash
# Command 2 of the README: build and run every test, twice: an optimised build with
# warnings as errors, then a Debug build under AddressSanitizer and UBSan. Run it as
# root so that the live-kernel tests run; elsewhere they skip, saying why.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --workflow --preset ci --fresh
cmake --workflow --preset asan --fresh
