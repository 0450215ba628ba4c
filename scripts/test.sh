#!/usr/bin/env bash
# Command 2 of the README: build and run every test, twice: an optimised build with
# warnings as errors, then a Debug build under AddressSanitizer and UBSan. Run it as
# root so that the live-kernel tests run; elsewhere they skip, saying why. After the
# optimised build: the installed package is checked (scripts/test-install.sh: the
# embedding example built against it with CMake and with pkg-config), and the style of
# the C++ files changed by the last commit (scripts/check-style.sh). Then the libFuzzer
# targets (fuzz/README.md), built with clang, each fuzzed for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --workflow --preset ci --fresh
scripts/test-install.sh build/ci
scripts/check-style.sh
cmake --workflow --preset fuzz --fresh
cmake --workflow --preset asan --fresh
