#!/usr/bin/env bash
# Runs the travel saga and checks every service's final state: the Paris
# trip is confirmed with car, hotel and flight booked; the Lisbon trip's
# flight failed, its hotel and then its car were cancelled (in that order),
# and no flight is booked for it.
set -euo pipefail
out=$("$1" "$2")
echo "$out"
grep -qx "T-1: confirmed \[car-booked, hotel-booked, flight-booked\]" <<<"$out"
grep -qx "T-2: cancelled (no flight in Lisbon) \[car-booked, hotel-booked, flight failed: no flight in Lisbon, hotel-cancelled, car-cancelled\]" <<<"$out"
grep -qx "  car/T-1 booked in Paris" <<<"$out"
grep -qx "  car/T-2 cancelled" <<<"$out"
grep -qx "  hotel/T-1 booked in Paris" <<<"$out"
grep -qx "  hotel/T-2 cancelled" <<<"$out"
grep -qx "  flight/T-1 booked in Paris" <<<"$out"
! grep -q "flight/T-2" <<<"$out"
