#!/usr/bin/env bash
# The golden outputs of `rmapkit show` and `rmapkit walk`, text and DOT, for every design
# (tests/golden/README.md).
#
#   scripts/update-golden.sh [RMAPKIT]          rewrite tests/golden/ from what RMAPKIT prints
#   scripts/update-golden.sh --check [RMAPKIT]  compare instead; exit 1 on any difference
#
# RMAPKIT defaults to build/ci/tools/rmapkit/rmapkit. For each scenario below and each
# design (the anonymous ones, and linux-6 under each older file design), after every
# `check` statement: `show`, and a `walk --op referenced` of the first
# frame of each kind of mapping there (anon, ksm, file), so that the anon_vma, KSM and
# i_mmap walks are all drawn.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
check=0
if [ "${1:-}" = "--check" ]; then
  check=1
  shift
fi
rmapkit=$(realpath "${1:-$root/build/ci/tools/rmapkit/rmapkit}")
golden=$root/tests/golden
cd "$root"

# The examples, and two corpus scenarios that bring KSM and file/shmem pages.
sources=(examples/*.rmap tests/scenarios/38_ksm_across_fork.rmap tests/scenarios/55_mixed_file_shmem_anon_chain.rmap)
designs=(linux-6 linux-3.19 linux-2.6.34 linux-2.6.7 pte-chain legoos linux-6+prio-tree linux-6+list)

out=$(mktemp -d)
errors=$(mktemp)
trap 'rm -rf "$out" "$errors"' EXIT

# run FILE ARGS...: rmapkit's output into FILE; a failing command stops the script.
run() {
  local file=$1
  shift
  if ! "$rmapkit" "$@" >"$file" 2>"$errors"; then
    echo "update-golden.sh: rmapkit $* failed:" >&2
    cat "$errors" >&2
    exit 2
  fi
}

for src in "${sources[@]}"; do
  name=$(basename "$src" .rmap)
  mapfile -t checks < <(grep -n '^check' "$src" | cut -d: -f1)
  [ ${#checks[@]} -gt 0 ] || { echo "update-golden.sh: $src has no check statement" >&2; exit 2; }
  for design in "${designs[@]}"; do
    dir=$out/$name/$design
    mkdir -p "$dir"
    for line in "${checks[@]}"; do
      run "$dir/show-line$line.txt" show "$src" --at "line:$line" --design "$design"
      run "$dir/show-line$line.dot" show "$src" --at "line:$line" --design "$design" --format dot
    done
    for line in "${checks[@]}"; do
      # The first frame of each mapping kind, from the show text just written.
      frames=$(awk '/^frame [0-9]+ mapping=/ { split($3, m, /[=(]/); if (!(m[2] in seen)) { seen[m[2]] = 1; print $2 } }' \
        "$dir/show-line$line.txt")
      for frame in $frames; do
        base=$dir/walk-line$line-frame$frame
        run "$base.txt" walk "$src" --at "line:$line" --design "$design" --frame "$frame" --op referenced
        run "$base.dot" walk "$src" --at "line:$line" --design "$design" --frame "$frame" --op referenced --format dot
      done
    done
  done
done
cp "$golden/README.md" "$out/README.md" 2>/dev/null || true

if [ $check -eq 1 ]; then
  if ! diff -r -u "$golden" "$out" >"$errors" 2>&1; then
    head -c 20000 "$errors"
    echo "update-golden.sh: show/walk output differs from tests/golden (see above)." >&2
    echo "If the change is meant, run scripts/update-golden.sh and commit tests/golden." >&2
    exit 1
  fi
  echo "update-golden.sh: $(find "$golden" -type f \( -name '*.txt' -o -name '*.dot' \) | wc -l) golden files match"
else
  find "$golden" -mindepth 1 -maxdepth 1 -type d -exec rm -rf {} +
  mkdir -p "$golden"
  cp -r "$out"/*/ "$golden"/
  echo "update-golden.sh: wrote $(find "$golden" -type f \( -name '*.txt' -o -name '*.dot' \) | wc -l) golden files"
fi
