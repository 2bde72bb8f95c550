#!/usr/bin/env bash
# Runs the order/inventory example end to end: a broker, the inventory
# service (apples in stock, no pears), and the order service placing one
# order of each. The pear order is compensated and ends cancelled.
#   examples/order_inventory/run.sh [BUILD_BIN_DIR]
set -euo pipefail
bin=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/bin}
work=$(mktemp -d "${TMPDIR:-/tmp}/txmq-example-XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

"$bin/txmqd" --data-dir "$work/broker" --listen 'tcp://127.0.0.1:*' --ready-file "$work/ready" \
  --log-level warn &
pids+=($!)
for _ in $(seq 100); do [ -f "$work/ready" ] && break; sleep 0.1; done
broker=$(cat "$work/ready")
echo "broker at $broker"

"$bin/txmq-example-inventory-service" --broker "$broker" --db "$work/inventory-db" \
  --stock apple=5 --stock pear=0 2>"$work/inventory.log" &
pids+=($!)

"$bin/txmq-example-order-service" --broker "$broker" --db "$work/orders-db" \
  --order o-1:apple:2 --order o-2:pear:1 --wait 30 2>"$work/orders.log"
