#!/usr/bin/env bash
# Installs this build into a temporary prefix, then builds tests/install/app
# against it twice, as a consumer would, and runs both builds:
#   1. CMake: find_package(txmq) from a project that asks for C++17;
#   2. pkg-config: a plain `c++ -std=c++17 ... $(pkg-config --cflags --libs txmq)`.
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/txmq-install-XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build_dir" --prefix "$prefix" >/dev/null
test -x "$prefix/bin/txmqd"
test -x "$prefix/bin/txmqctl"
test -f "$prefix/include/txmq/producer.h"
if grep -rqE '#include *[<"](zmq|leveldb/|capnp/|kj/)' "$prefix/include/txmq"; then
  echo "public headers include a dependency's headers" >&2
  exit 1
fi

echo "== CMake consumer (CMAKE_CXX_STANDARD 17)"
cmake -S "$source_dir/tests/install/app" -B "$work/app-build" \
  -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/app-build" -j 2 >"$work/cmake-build.log" 2>&1 || {
  cat "$work/cmake-build.log" >&2
  exit 1
}
"$work/app-build/app" "$work/data-cmake"
"$work/app-build/app_pg"
"$work/app-build/app_sqlite"

echo "== pkg-config consumer (c++ -std=c++17)"
pc_dir=$(dirname "$(find "$prefix" -name txmq.pc)")
flags=$(PKG_CONFIG_PATH="$pc_dir" pkg-config --cflags --libs txmq)
test "$(PKG_CONFIG_PATH="$pc_dir" pkg-config --modversion txmq)" = "$(sed -n 's/.*kVersion = "\(.*\)".*/\1/p' "$prefix/include/txmq/version.h")"
# shellcheck disable=SC2086  # the flags are words
c++ -std=c++17 "$source_dir/tests/install/app/main.cc" -o "$work/app-pc" $flags
# (A shared-library build: the loader finds libtxmq_*.so in the prefix.)
LD_LIBRARY_PATH="$(dirname "$pc_dir")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$work/app-pc" "$work/data-pc"
