#!/usr/bin/env bash
# Installs the Debian 12 packages rmapkit builds and tests with. Idempotent: when
# everything is already installed it does nothing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build
  libfmt-dev libcli11-dev nlohmann-json3-dev libexpected-dev
  libgtest-dev libgmock-dev librapidcheck-dev libbenchmark-dev libdtl-dev
  graphviz  # rmapkit show|walk --format svg runs its dot program
  python3  # scripts/design_lab.py (docs/designs.md)
  gnuplot-nox  # its plots (docs/designs/*.svg) and lab_sweep.py's
  python3-jsonschema  # its jsonschema validator checks --json output (tests/json/json_test.py)
  pkgconf clang-format clang-tidy  # scripts/test-install.sh, scripts/check-style.sh
  zlib1g-dev chromium  # rmapkit html gzips its page's data; the page's test loads it headless
  clang libclang-rt-14-dev  # the fuzz preset: clang with libFuzzer (-fsanitize=fuzzer) and its sanitizers
  parallel slurm-wlm munge  # rmapkit fuzz on many machines: scripts/fuzz-parallel.sh, fuzz-slurm.sh and their tests
  rsync  # GNU parallel sends and brings back a remote shard's folder with it
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
