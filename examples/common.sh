# Sourced by the examples' scripts (examples/*/run.sh): what every one of
# them needs before its services start.
#   . "$(dirname "$0")/../common.sh" "$@"   # $1: the build's bin directory
#   start_broker [txmqd flags...]            # a broker; sets $broker
#   ... "${client_keys[@]}"                  # a service's CURVE flags (TXMQ_EXAMPLE_CURVE=1)
#   start_postgres                           # a throwaway PostgreSQL; sets $pg_port
#   pids+=($!)                               # killed when the script ends
# The work directory $work goes away at exit (KEEP=1 keeps it, and the
# services' logs in it).
bin=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}
bin=$(cd "$bin" && pwd)  # absolute: some steps run in $work
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

# With TXMQ_EXAMPLE_CURVE=1 the broker runs CURVE with an ACL, and every
# service passes "${client_keys[@]}" (--curve-key/--server-key) to reach it.
client_keys=()
curve_flags=()
if [ -n "${TXMQ_EXAMPLE_CURVE:-}" ]; then
  (cd "$work" && "$bin/txmqctl" keygen broker >/dev/null && "$bin/txmqctl" keygen service >/dev/null)
  cat >"$work/acl.json" <<ACL
{"principals": {"service": {"public_key": "$(cat "$work/service.pub")",
  "produce": ["*"], "consume": ["*"], "producer_groups": ["*"]}}}
ACL
  curve_flags=(--curve-secret-key "$work/broker.key" --acl "$work/acl.json")
  client_keys=(--curve-key "$work/service.key" --server-key "$work/broker.pub")
  echo "CURVE: services connect as principal 'service' (ACL $work/acl.json)"
fi

# txmqd on a free loopback port and a data directory in $work; waits
# (bounded) until it serves.
start_broker() {
  "$bin/txmqd" --data-dir "$work/broker" --listen 'tcp://127.0.0.1:*' \
    --ready-file "$work/ready" --log-level warn "${curve_flags[@]}" "$@" 2>"$work/broker.log" &
  pids+=($!)
  for _ in $(seq 100); do [ -f "$work/ready" ] && break; sleep 0.1; done
  [ -f "$work/ready" ] || { echo "txmqd did not start: $(tail -3 "$work/broker.log")"; exit 1; }
  broker=$(head -1 "$work/ready")
  echo "broker at $broker"
}

# Waits (bounded, 10 s) until FILE has at least N lines matching PATTERN.
#   wait_lines FILE PATTERN N
wait_lines() {
  for _ in $(seq 200); do
    [ "$(grep -c "$2" "$1" 2>/dev/null || true)" -ge "$3" ] && return 0
    sleep 0.05
  done
}

# The order/inventory kill-and-restart run (examples/order_inventory*/crash.sh):
# the order service is killed right after placing its orders (some still in
# its outbox), the inventory service mid-handler; both start again, and the
# verdict is read from what they report. The caller defines start_orders
# (sets $order_service, output in $work/orders.out), start_inventory (sets
# $inventory, output appended to $work/inventory.out) and apples_left.
run_order_inventory_crash() {
  start_orders
  wait_lines "$work/orders.out" "^placed" 20
  kill -9 "$order_service"; wait "$order_service" 2>/dev/null || true
  echo "order service killed right after placing 20 orders"
  start_inventory
  wait_lines "$work/inventory.out" "^order " 3
  kill -9 "$inventory"; wait "$inventory" 2>/dev/null || true
  echo "inventory service killed while reserving; started again"
  start_inventory
  # The order service again, with the same orders: it places none twice,
  # relays what its outbox still held, and waits for every outcome.
  start_orders
  echo "order service started again"
  wait "$order_service" || true
  grep -v "was placed before" "$work/orders.out"
  kill "$inventory"; wait "$inventory" 2>/dev/null || true

  local confirmed cancelled left
  confirmed=$(grep -c ": confirmed$" "$work/orders.out" || true)
  cancelled=$(grep -c ": cancelled (apple out of stock)$" "$work/orders.out" || true)
  left=$(apples_left)
  if [ "$confirmed" -eq 15 ] && [ "$cancelled" -eq 5 ] && [ "$left" -eq 0 ]; then
    echo "after the kills: 15 confirmed, 5 cancelled, 0 apples left: nothing lost, nothing twice"
  else
    echo "after the kills: WRONG: $confirmed confirmed, $cancelled cancelled, $left apples left"
  fi
}
