#!/usr/bin/env bash
# Installs this build into a temporary prefix, builds tests/install/app
# against it with find_package(txmq), and runs it.
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/txmq-install-XXXXXX")
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
test -x "$work/prefix/bin/txmqd"
test -x "$work/prefix/bin/txmqctl"
test -f "$work/prefix/include/txmq/producer.h"
if grep -rqE '#include *[<"](zmq|leveldb/|capnp/|kj/)' "$work/prefix/include/txmq"; then
  echo "public headers include a dependency's headers" >&2
  exit 1
fi
cmake -S "$source_dir/tests/install/app" -B "$work/app-build" \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/app-build" -j 2 >/dev/null
"$work/app-build/app" "$work/data"
