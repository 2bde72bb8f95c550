# Sourced by the examples' scripts (examples/*/run.sh): what every one of
# them needs before its services start.
#   . "$(dirname "$0")/../common.sh" "$@"   # $1: the build's bin directory
#   start_broker [txmqd flags...]            # a broker; sets $broker
#   pids+=($!)                               # killed when the script ends
# The work directory $work goes away at exit (KEEP=1 keeps it, and the
# services' logs in it).
bin=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}
work=$(mktemp -d "${TMPDIR:-/tmp}/txmq-example-XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT

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
