#!/usr/bin/env bash
# Command 2 of the README: build and run every test, twice: an optimised build with
# warnings as errors, then a Debug build under AddressSanitizer and UBSan. Run it as
# root so that the live-kernel tests run; elsewhere they skip, saying why. After the
# optimised build: the installed package is checked (scripts/test-install.sh: the
# embedding example built against it with CMake and with pkg-config), and the style of
# the C++ files changed by the last commit (scripts/check-style.sh).
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

scripts/install-deps.sh
cmake --workflow --preset ci --fresh
scripts/test-install.sh build/ci
scripts/check-style.sh
cmake --workflow --preset asan --fresh
kernel_skipped_banner build/ci build/asan
