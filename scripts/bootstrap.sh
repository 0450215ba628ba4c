#!/usr/bin/env bash
# Command 1 of the README: install what is needed, build, and run the main job on a
# bundled example (the fork/COW scenario on the live kernel; needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --workflow --preset release
build/release/tools/rmapkit/rmapkit kernel examples/fork-cow.rmap
