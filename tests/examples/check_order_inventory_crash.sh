#!/usr/bin/env bash
# Runs the order/inventory kill-and-restart run and checks the final state
# read from both services: every order decided once, the stock exactly used.
set -euo pipefail
out=$("$1" "$2")
echo "$out"
grep -qx "after the kills: 15 confirmed, 5 cancelled, 0 apples left: nothing lost, nothing twice" <<<"$out"
grep -q "inventory service killed while reserving" <<<"$out"
