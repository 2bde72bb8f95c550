#!/usr/bin/env bash
# Runs the travel saga end to end: a broker, the car, hotel and flight
# services (no flight seats to Lisbon), and the trip service booking a trip
# to Paris and one to Lisbon. Paris is confirmed; for Lisbon the flight
# fails, and the hotel, then the car, are cancelled: every service ends
# consistent, and the script prints each one's store.
#   examples/travel_saga/run.sh [BUILD_BIN_DIR]
set -euo pipefail
. "$(dirname "$0")/../common.sh" "$@"
start_broker

services=()
for kind in car hotel flight; do
  sold_out=()
  [ "$kind" = flight ] && sold_out=(--sold-out Lisbon)
  "$bin/txmq-example-travel" booking --kind "$kind" --broker "$broker" --db "$work/$kind" \
    "${sold_out[@]}" >"$work/$kind.out" 2>"$work/$kind.log" &
  pids+=($!)
  services+=($!)
done

"$bin/txmq-example-travel" trip --broker "$broker" --db "$work/trip" \
  --trip T-1:Paris --trip T-2:Lisbon --wait 60 2>"$work/trip.log"

# Stop the booking services, then read what each one holds.
kill "${services[@]}"
wait "${services[@]}" 2>/dev/null || true
for kind in car hotel flight; do
  echo "$kind service:"
  "$bin/txmq-example-travel" report --db "$work/$kind" | sed 's/^/  /'
done
