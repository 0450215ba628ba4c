#!/usr/bin/env bash
# Command 1 of the README: install what is needed, build, and run the main job on a
# bundled example: the fork/COW scenario on the model, then model and live kernel side by
# side (rmapkit diff prints nothing when they agree; the kernel needs root).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake --workflow --preset release
build/release/tools/rmapkit/rmapkit run examples/fork-cow.rmap
build/release/tools/rmapkit/rmapkit diff examples/fork-cow.rmap
