#!/usr/bin/env bash
# Runs the order/inventory example and checks its outcome: the apple order
# is confirmed, the pear order (no stock) is cancelled by compensation.
set -euo pipefail
out=$("$1" "$2")
echo "$out"
grep -qx "o-1: confirmed" <<<"$out"
grep -qx "o-2: cancelled (pear out of stock)" <<<"$out"
