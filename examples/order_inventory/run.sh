#!/usr/bin/env bash
# Runs the order/inventory example end to end: a broker, the inventory
# service (apples in stock, no pears), and the order service placing one
# order of each. The pear order is compensated and ends cancelled.
#   examples/order_inventory/run.sh [BUILD_BIN_DIR]
# TXMQ_EXAMPLE_CURVE=1 runs it against a broker with CURVE and an ACL.
set -euo pipefail
. "$(dirname "$0")/../common.sh" "$@"
start_broker

"$bin/txmq-example-inventory-service" --broker "$broker" "${client_keys[@]}" --db "$work/inventory-db" \
  --stock apple=5 --stock pear=0 2>"$work/inventory.log" &
pids+=($!)

"$bin/txmq-example-order-service" --broker "$broker" "${client_keys[@]}" --db "$work/orders-db" \
  --order o-1:apple:2 --order o-2:pear:1 --wait 30 2>"$work/orders.log"
