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

# Without root (or wherever the kernel back end cannot run) every live-kernel test skips
# and the suite still passes, having checked nothing against the kernel: say so, last and
# loudly, so that nobody takes it for a full pass. Arguments: the build directories whose
# tests just ran.
kernel_skipped_banner() {
  local build log skipped total why lines=()
  for build in "$@"; do
    log=$build/Testing/Temporary/LastTest.log
    [[ -f $log ]] || continue
    skipped=$(grep -c -e 'the kernel back end cannot run here' -e 'the kernel back end needs root: skipped' "$log" ||
      true)
    ((skipped > 0)) || continue
    why=$(grep -m1 -o 'the kernel back end cannot run here: .*' "$log" || echo 'the kernel back end needs root')
    total=$(ctest --test-dir "$build" -L kernel -N | sed -n 's/^Total Tests: //p')
    lines+=("#  $build: $skipped of $total live-kernel tests (label kernel) skipped:" "#    $why")
  done
  ((${#lines[@]} > 0)) || return 0
  {
    echo
    echo '################################################################################'
    echo '#  NO KERNEL BEHAVIOUR WAS CHECKED'
    printf '%s\n' "${lines[@]}"
    echo '#  What passed checked the model against itself and against the golden reports'
    echo '#  only. Run scripts/test.sh as root to check it against the live kernel.'
    echo '################################################################################'
  } >&2
}

# A stage whose tests failed: what each failing test printed, again, last. ctest prints it
# where the test ran, thousands of lines up; a reader of the log's tail (a CI summary, a
# terminal's scrollback) sees only the list of names. Arguments: the build directory and
# the time the stage started (an older list of failures is a previous run's).
failed_tests_digest() {
  local dir=$1/Testing/Temporary num name
  [[ -s $dir/LastTestsFailed.log && $(stat -c %Y "$dir/LastTestsFailed.log") -ge $2 ]] || return 0
  {
    echo
    echo "#### $1: what each failing test printed (its last 80 lines; all of it: $dir/LastTest.log)"
    while IFS=: read -r num name; do
      echo "---- test $num: $name"
      awk -v at="$num/" 'index($0, at) == 1 && / Testing: / { on = 1; next }
                         on && /^<end of output>$/ { exit }
                         on' "$dir/LastTest.log" | tail -n 80
    done <"$dir/LastTestsFailed.log"
  } >&2
}

# One preset's workflow (configure, build, test); on failure, the digest above.
workflow() {
  local started
  started=$(date +%s)
  if ! cmake --workflow --preset "$1" --fresh; then
    failed_tests_digest "build/$1" "$started"
    return 1
  fi
}

scripts/install-deps.sh
workflow ci
scripts/test-install.sh build/ci
scripts/check-style.sh
workflow fuzz
workflow asan
kernel_skipped_banner build/ci build/asan
