#!/usr/bin/env bash
# Installs a build into a temporary prefix and builds examples/embed against the installed
# package, once with CMake (find_package(rmapkit), CMAKE_PREFIX_PATH) and once with
# pkg-config (rmapkit.pc, PKG_CONFIG_PATH); runs both and checks what they print. Also
# checks that every installed public header compiles on its own and that the installed
# rmapkit tool runs. Nothing outside the temporary directory is touched.
#
#   scripts/test-install.sh [BUILD_DIR]   default: build/ci (built by `cmake --workflow --preset ci`)
set -euo pipefail
cd "$(dirname "$0")/.."

build=${1:-build/ci}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
step() { echo "test-install: $*"; }

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log"

# Only public headers, nothing of the build tree or the sources.
if [ -n "$(find "$prefix/include" -mindepth 1 -maxdepth 1 ! -name rmapkit)" ]; then
  echo "test-install: something besides rmapkit/ under include/:" >&2
  ls "$prefix/include" >&2
  exit 1
fi
pc=$(find "$prefix" -name rmapkit.pc)
config=$(find "$prefix" -name rmapkitConfig.cmake)
[ -n "$pc" ] && [ -n "$config" ] || { echo "test-install: rmapkit.pc or rmapkitConfig.cmake not installed" >&2; exit 1; }

step "every installed header compiles on its own"
export PKG_CONFIG_PATH=$(dirname "$pc")
for h in $(cd "$prefix/include" && find rmapkit -name '*.h' | sort); do
  echo "#include <$h>" | c++ -x c++ -fsyntax-only -Wall -Wextra -Werror $(pkg-config --cflags rmapkit) - ||
    { echo "test-install: $h does not compile on its own" >&2; exit 1; }
done

step "examples/embed with CMake: find_package(rmapkit), CMAKE_PREFIX_PATH=$prefix"
cmake -S examples/embed -B "$tmp/embed-cmake" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_PREFIX_PATH="$prefix" >"$tmp/embed-cmake.log"
cmake --build "$tmp/embed-cmake" >>"$tmp/embed-cmake.log"
found=$(sed -n 's/^rmapkit_DIR:PATH=//p' "$tmp/embed-cmake/CMakeCache.txt")
[[ $found == "$prefix"/* ]] || { echo "test-install: find_package used $found, not the installed package" >&2; exit 1; }

step "examples/embed with pkg-config: PKG_CONFIG_PATH=$PKG_CONFIG_PATH"
c++ -O2 -Wall -Wextra -Werror examples/embed/embed.cc $(pkg-config --cflags --libs rmapkit) -o "$tmp/embed-pc"

# What the example must print: the three sharers of page 0, the two processes that still
# map page 1 after child2's copy-on-write, and the version it was built against.
version=$(sed -n 's/^#define RMAPKIT_VERSION "\(.*\)"$/\1/p' "$prefix/include/rmapkit/version.h")
for exe in "$tmp/embed-cmake/embed" "$tmp/embed-pc"; do
  out=$("$exe") || { echo "test-install: $exe failed:" >&2; echo "$out" >&2; exit 1; }
  if ! grep -qx "rmapkit $version" <<<"$out" ||
     [ "$(grep -A4 -x 'page 0 (pfn .*):' <<<"$out" | grep -cx '  [a-z0-9]* *VMA .* at 0x100000000000')" != 3 ] ||
     [ "$(grep -cx '  3 mappings' <<<"$out")" != 1 ] || [ "$(grep -cx '  2 mappings' <<<"$out")" != 1 ]; then
    echo "test-install: $exe printed something else:" >&2
    echo "$out" >&2
    exit 1
  fi
  step "$(basename "$exe"): 3 mappings of page 0, 2 of page 1 after COW"
done

step "the installed rmapkit runs examples/fork-cow.rmap as the build's does"
diff <("$build/tools/rmapkit/rmapkit" run examples/fork-cow.rmap) <("$prefix/bin/rmapkit" run examples/fork-cow.rmap)
[ -x "$(find "$prefix" -name rmapkit-agent -path '*/libexec/*')" ] || { echo "test-install: no agent in libexec" >&2; exit 1; }

step "ok"
