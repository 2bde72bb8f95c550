#!/usr/bin/env bash
# The kill-and-restart run of the order/inventory example, on PostgreSQL:
# twenty orders of one apple each against a stock of fifteen. The order
# service is killed (SIGKILL) right after placing them, some messages still
# in its outbox table; the inventory service is killed while it reserves,
# mid-handler; both are started again. At the end, read from the two
# databases: fifteen orders confirmed, five cancelled, no apple left, none
# sold twice.
#   examples/order_inventory_pg/crash.sh [BUILD_BIN_DIR]
# KEEP=1 keeps the work directory (the logs).
set -euo pipefail
. "$(dirname "$0")/../common.sh" "$@"
start_broker --client-timeout 2s
start_postgres
create_database orders
create_database inventory
orders_db="host=127.0.0.1 port=$pg_port user=txmq dbname=orders"
inventory_db="host=127.0.0.1 port=$pg_port user=txmq dbname=inventory"

start_inventory() {
  "$bin/txmq-example-pg-inventory-service" --broker "$broker" --pg "$inventory_db" \
    --stock apple=15 >>"$work/inventory.out" 2>>"$work/inventory.log" &
  inventory=$!
  pids+=($inventory)
}
orders=()
for i in $(seq 20); do orders+=(--order "o-$i:apple:1"); done
start_orders() {
  "$bin/txmq-example-pg-order-service" --broker "$broker" --pg "$orders_db" "${orders[@]}" \
    --wait 60 >"$work/orders.out" 2>>"$work/orders.log" &
  order_service=$!
  pids+=($order_service)
}
# What the inventory service reports left of the apples (and its stock table,
# printed for the reader).
apples_left() {
  "$bin/txmq-example-pg-inventory-service" --pg "$inventory_db" --report >&2
  "$bin/txmq-example-pg-inventory-service" --pg "$inventory_db" --report | awk '$2 == "apple" {print $3}'
}

run_order_inventory_crash
