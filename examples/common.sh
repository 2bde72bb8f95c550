# Sourced by the examples' scripts (examples/*/run.sh): what every one of
# them needs before its services start.
#   . "$(dirname "$0")/../common.sh" "$@"   # $1: the build's bin directory
#   start_broker [txmqd flags...]            # a broker; sets $broker
#   start_postgres                           # a throwaway PostgreSQL; sets $pg_port
#   pids+=($!)                               # killed when the script ends
# The work directory $work goes away at exit (KEEP=1 keeps it, and the
# services' logs in it).
bin=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}
work=$(mktemp -d "${TMPDIR:-/tmp}/txmq-example-XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  stop_scratch_postgres
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/scratch_postgres.sh"

# PostgreSQL in $work/pg (scripts/scratch_postgres.sh), stopped at exit;
# `create_database NAME` then makes a database for a service.
start_postgres() {
  mkdir -p "$work/pg"
  chmod o+x "$work"  # the server runs as nobody (scratch_postgres.sh)
  start_scratch_postgres "$work/pg" || exit 1
  echo "PostgreSQL on 127.0.0.1:$pg_port"
}
create_database() {
  "$pgbin/createdb" -h 127.0.0.1 -p "$pg_port" -U txmq "$1"
}

# txmqd on a free loopback port and a data directory in $work; waits
# (bounded) until it serves.
start_broker() {
  "$bin/txmqd" --data-dir "$work/broker" --listen 'tcp://127.0.0.1:*' \
    --ready-file "$work/ready" --log-level warn "$@" 2>"$work/broker.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -f "$work/ready" ] && break; sleep 0.1; done
  [ -f "$work/ready" ] || { echo "txmqd did not start: $(tail -3 "$work/broker.log")"; exit 1; }
  broker=$(head -1 "$work/ready")
  echo "broker at $broker"
}
