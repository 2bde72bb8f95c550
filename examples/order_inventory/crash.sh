#!/usr/bin/env bash
# The README's promise, run: kill either service at any point and start it
# again on the same --db; nothing committed is lost, nothing is applied
# twice. Twenty orders of one apple each against a stock of fifteen: the
# order service is killed (SIGKILL) right after placing them, the inventory
# service while it reserves; both are started again. At the end: fifteen
# orders confirmed, five cancelled, no apple left and none sold twice.
#   examples/order_inventory/crash.sh [BUILD_BIN_DIR]
# KEEP=1 keeps the work directory (the logs).
set -euo pipefail
. "$(dirname "$0")/../common.sh" "$@"
start_broker --client-timeout 2s

start_inventory() {
  "$bin/txmq-example-inventory-service" --broker "$broker" --db "$work/inventory-db" \
    --stock apple=15 >>"$work/inventory.out" 2>>"$work/inventory.log" &
  inventory=$!
  pids+=($inventory)
}
orders=()
for i in $(seq 20); do orders+=(--order "o-$i:apple:1"); done
start_orders() {
  "$bin/txmq-example-order-service" --broker "$broker" --db "$work/orders-db" "${orders[@]}" \
    --wait 60 >"$work/orders.out" 2>>"$work/orders.log" &
  order_service=$!
  pids+=($order_service)
}
# What the inventory service reports left of the apples (and its stock table,
# printed for the reader).
apples_left() {
  "$bin/txmq-example-inventory-service" --db "$work/inventory-db" --report >&2
  "$bin/txmq-example-inventory-service" --db "$work/inventory-db" --report | awk '$2 == "apple" {print $3}'
}

run_order_inventory_crash
