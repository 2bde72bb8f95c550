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
# Waits (bounded) until FILE has at least N lines matching PATTERN.
wait_lines() {
  for _ in $(seq 100); do
    [ "$(grep -c "$2" "$1" 2>/dev/null || true)" -ge "$3" ] && return 0
    sleep 0.05
  done
}

# The order service places the orders while no inventory service runs,
# and is killed as soon as it has: some order-created messages may still
# be in its outbox, not yet at the broker.
start_orders
wait_lines "$work/orders.out" "^placed" 20
kill -9 "$order_service"; wait "$order_service" 2>/dev/null || true
echo "order service killed right after placing 20 orders"
# The inventory service starts, works a moment, and is killed mid-flow.
start_inventory
sleep 0.2
kill -9 "$inventory"; wait "$inventory" 2>/dev/null || true
echo "inventory service killed while reserving; started again"
start_inventory
# The order service again, with the same orders: it places none twice,
# relays what its outbox still held, and waits for every outcome.
start_orders
echo "order service started again"
wait "$order_service" || true
cat "$work/orders.out" | grep -v "was placed before"
kill "$inventory"; wait "$inventory" 2>/dev/null || true
"$bin/txmq-example-inventory-service" --db "$work/inventory-db" --report

confirmed=$(grep -c ": confirmed$" "$work/orders.out" || true)
cancelled=$(grep -c ": cancelled (apple out of stock)$" "$work/orders.out" || true)
left=$("$bin/txmq-example-inventory-service" --db "$work/inventory-db" --report |
  awk '$2 == "apple" {print $3}')
if [ "$confirmed" -eq 15 ] && [ "$cancelled" -eq 5 ] && [ "$left" -eq 0 ]; then
  echo "after the kills: 15 confirmed, 5 cancelled, 0 apples left: nothing lost, nothing twice"
else
  echo "after the kills: WRONG: $confirmed confirmed, $cancelled cancelled, $left apples left"
fi
