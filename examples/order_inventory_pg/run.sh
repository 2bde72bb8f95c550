#!/usr/bin/env bash
# The order/inventory example on PostgreSQL: a broker, a throwaway
# PostgreSQL with one database per service, the inventory service (apples
# in stock, no pears), and the order service placing one order of each.
# The pear order is compensated and ends cancelled.
#   examples/order_inventory_pg/run.sh [BUILD_BIN_DIR]
set -euo pipefail
. "$(dirname "$0")/../common.sh" "$@"
start_broker
start_postgres
create_database orders
create_database inventory
orders_db="host=127.0.0.1 port=$pg_port user=txmq dbname=orders"
inventory_db="host=127.0.0.1 port=$pg_port user=txmq dbname=inventory"

"$bin/txmq-example-pg-inventory-service" --broker "$broker" --pg "$inventory_db" \
  --stock apple=5 --stock pear=0 2>"$work/inventory.log" &
pids+=($!)

"$bin/txmq-example-pg-order-service" --broker "$broker" --pg "$orders_db" \
  --order o-1:apple:2 --order o-2:pear:1 --wait 30 2>"$work/orders.log"
