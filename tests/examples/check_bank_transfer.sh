#!/usr/bin/env bash
# Runs the bank transfer example and checks its final state, not its exit
# code alone: both banks' balances add up to the money there was, and every
# committed transfer was credited or refunded exactly once although the sender was
# killed between local commit and end three times and the receiver once.
set -euo pipefail
out=$("$1" "$2")
echo "$out"
grep -qx "money conserved: yes (.*)" <<<"$out"
grep -qx "every committed transfer applied once: yes (.*)" <<<"$out"
grep -q "sender killed (run 3)" <<<"$out"
# Killed three times on purpose, and never died otherwise.
! grep -q "sender killed (run 4)" <<<"$out"
