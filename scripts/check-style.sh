#!/usr/bin/env bash
# Checks the style of the C++ files changed since BASE: clang-format (.clang-format) must
# leave them as they are, and clang-tidy (.clang-tidy) must find nothing in the .cc files,
# compiled as the ci build compiles them (build/ci/compile_commands.json: run
# `cmake --preset ci` first). Files deleted since BASE are skipped.
#
#   scripts/check-style.sh [BASE]   BASE: a commit; default: the previous commit, HEAD~1
#
# The comparison is with the working tree, so uncommitted changes are checked too. In a
# clone without BASE (shallow, or a single commit) there is nothing to compare: it checks
# nothing and says so.
set -euo pipefail
cd -P "$(dirname "$0")/.."

base=${1:-HEAD~1}
build=build/ci
if ! git rev-parse --verify --quiet "$base^{commit}" >/dev/null; then
  if [ $# -gt 0 ]; then
    echo "check-style: no commit $base" >&2
    exit 2
  fi
  echo "check-style: no previous commit (a shallow or single-commit clone): nothing to check"
  exit 0
fi
mapfile -t files < <(git diff --name-only --diff-filter=d "$base" -- '*.cc' '*.h')
if [ ${#files[@]} -eq 0 ]; then
  echo "check-style: no C++ file changed since $base"
  exit 0
fi
echo "check-style: ${#files[@]} C++ file(s) changed since $base"

status=0
# clang-format: the whole file, so that a change cannot leave its surroundings unformatted.
if ! clang-format --dry-run --Werror "${files[@]}"; then
  echo "check-style: clang-format would change the files above; run: clang-format -i FILE" >&2
  status=1
fi

# clang-tidy: each changed .cc file the ci build compiles (a changed header is checked
# through the files that include it, under .clang-tidy's HeaderFilterRegex).
db=$build/compile_commands.json
if [ ! -f "$db" ]; then
  echo "check-style: no $db: run \`cmake --preset ci\` first" >&2
  exit 1
fi
for f in "${files[@]}"; do
  [[ $f == *.cc ]] || continue
  if ! grep -qF "\"file\": \"$PWD/$f\"" "$db"; then
    echo "check-style: $f is not in the ci build: clang-tidy skips it"
    continue
  fi
  # Compiler warnings are the build's business (gcc, -Werror): not clang's second opinion.
  if out=$(clang-tidy -p "$build" --quiet --warnings-as-errors='*' --extra-arg=-Wno-error \
             --extra-arg=-Wno-unknown-warning-option "$f" 2>&1); then
    continue
  fi
  out=$(grep -v '^[0-9]* warnings\? \(and [0-9]* errors\? \)\?generated\.$' <<<"$out")
  if grep -q '\[clang-diagnostic-error\]' <<<"$out"; then
    # The build's compiler (gcc) is the judge of what compiles; clang 14 lags it on some
    # C++20 (a structured binding captured by a lambda), and cannot check such a file.
    echo "check-style: clang cannot compile $f, so clang-tidy cannot check it (not a failure):"
    sed 's/^/  /' <<<"$out"
  else
    echo "$out" >&2
    status=1
  fi
done

if [ $status -eq 0 ]; then echo "check-style: clean"; fi
exit $status
