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
# Waits (bounded) until FILE has at least N lines matching PATTERN.
wait_lines() {
  for _ in $(seq 200); do
    [ "$(grep -c "$2" "$1" 2>/dev/null || true)" -ge "$3" ] && return 0
    sleep 0.05
  done
}

start_orders
wait_lines "$work/orders.out" "^placed" 20
kill -9 "$order_service"; wait "$order_service" 2>/dev/null || true
echo "order service killed right after placing 20 orders"
start_inventory
wait_lines "$work/inventory.out" "^order " 3
kill -9 "$inventory"; wait "$inventory" 2>/dev/null || true
echo "inventory service killed while reserving; started again"
start_inventory
start_orders
echo "order service started again"
wait "$order_service" || true
grep -v "was placed before" "$work/orders.out"
kill "$inventory"; wait "$inventory" 2>/dev/null || true
"$bin/txmq-example-pg-inventory-service" --pg "$inventory_db" --report

confirmed=$(grep -c ": confirmed$" "$work/orders.out" || true)
cancelled=$(grep -c ": cancelled (apple out of stock)$" "$work/orders.out" || true)
left=$("$bin/txmq-example-pg-inventory-service" --pg "$inventory_db" --report |
  awk '$2 == "apple" {print $3}')
if [ "$confirmed" -eq 15 ] && [ "$cancelled" -eq 5 ] && [ "$left" -eq 0 ]; then
  echo "after the kills: 15 confirmed, 5 cancelled, 0 apples left: nothing lost, nothing twice"
else
  echo "after the kills: WRONG: $confirmed confirmed, $cancelled cancelled, $left apples left"
fi
