#!/usr/bin/env bash
# The one list of Debian packages txmq needs to build and test.
# Installs only what is missing; does nothing (and needs no root) when all
# are present. Used by `make build|run|test` and therefore by .ci/run.
set -euo pipefail

PACKAGES=(
  cmake g++ make pkg-config
  libzmq3-dev cppzmq-dev        # transport
  libleveldb-dev libsnappy-dev  # storage (LevelDB links snappy)
  capnproto libcapnp-dev        # wire schema (capnp compile at build time)
  libgtest-dev libgmock-dev     # tests
  libcli11-dev                  # flags and config files
  libspdlog-dev libfmt-dev      # logs
  nlohmann-json3-dev            # --json output
  libbenchmark-dev              # micro benchmarks
  faketime                      # tests: steps txmqd's wall clock (libfaketime)
  util-linux mount              # tests: unshare --mount, a small tmpfs (disk full)
  systemd                       # tests: systemd-analyze verify of tools/packaging/txmqd.service
  libcurl4-openssl-dev          # cluster: HTTP to etcd's JSON gateway
  libcpp-httplib-dev            # txmqd --http: /metrics, /healthz, /readyz, the web console
  chromium                      # tests: the web console in a real headless browser
  etcd-server                   # tests: the cluster's coordinator (a real etcd 3.4)
  libpq-dev                     # local message tables in PostgreSQL (txmq::postgres)
  postgresql                    # tests: a real PostgreSQL server (initdb into a temp dir)
  libsqlite3-dev                # local message tables in SQLite (txmq::sqlite)
  libjemalloc-dev               # txmqd's allocator (broker/CMakeLists.txt)
)

missing=()
for pkg in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "txmq: installing missing packages: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "txmq: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
