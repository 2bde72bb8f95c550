#!/usr/bin/env bash
# Runs the bank transfer example end to end: a broker, Smith's bank (the
# receiver) and Bob's bank (the sender) making 1,000 transfers; every
# fiftieth is to Carol, who has no account at Smith's bank, and comes back
# as a compensation that refunds Bob. The sender
# is killed after the local commit of three transfers, before the broker
# heard their outcome, and restarted each time; the receiver is killed once
# and restarted too. At the end both stores are read: money is conserved
# and every committed transfer was credited or refunded exactly once.
#   examples/bank_transfer/run.sh [BUILD_BIN_DIR]
# TRANSFERS=N changes the count, CRASH_AT=37,80 where the sender dies;
# KEEP=1 keeps the work directory (the logs); DEMO=1 says what happens as it
# goes and shows txmqctl's view at the end (`make demo`).
set -euo pipefail
. "$(dirname "$0")/../common.sh" "$@"
transfers=${TRANSFERS:-1000}
crash_at=${CRASH_AT:-137,411,733}
say() { if [ -n "${DEMO:-}" ]; then printf '\n== %s\n' "$*"; fi; }
ctl() { echo "\$ txmqctl $*"; "$bin/txmqctl" --broker "$broker" "$@" | sed 's/^/  /'; }

# Check-backs come a second after a transaction's outcome is missing; a
# killed process's client id is free again two seconds after it went silent.
start_broker --transaction-timeout 1s --check-interval 1s --check-interval-max 2s \
  --client-timeout 2s
say "Smith's bank (the receiver) credits each transfer once, through an idempotent inbox."
say "Bob's bank (the sender) debits Bob and sends the transfer in one transaction: a half
   message at the broker, invisible to Smith's bank until Bob's debit commits locally.
   Every tenth transfer is declined (rolled back); every fiftieth is to Carol, unknown
   at Smith's bank, which answers with a compensation: Bob is refunded."

start_receiver() {
  "$bin/txmq-example-bank" receiver --broker "$broker" --db "$work/bank-b" \
    --status-file "$work/credited" 2>>"$work/receiver.log" &
  receiver=$!
  pids+=($receiver)
}
start_receiver

# The sender dies (SIGKILL) after three local commits; each time it is
# started again and goes on. The receiver is killed once, while transfers
# flow. Once every transfer is decided the sender keeps serving, as a
# service would, answering the broker's checks of the killed transactions.
start_sender() {
  "$bin/txmq-example-bank" sender --broker "$broker" --db "$work/bank-a" \
    --transfers "$transfers" --crash-at "$crash_at" --decided-file "$work/decided" \
    --status-file "$work/refunded" \
    2>>"$work/sender.log" &
  sender=$!
  pids+=($sender)
}
start_sender
runs=0
for _ in $(seq 1200); do
  [ -f "$work/decided" ] && break
  if ! kill -0 "$sender" 2>/dev/null; then
    wait "$sender" 2>/dev/null || true
    runs=$((runs + 1))
    echo "sender killed (run $runs); starting it again"
    say "The sender was killed (SIGKILL) right after a local commit, before the broker heard
   the outcome. The broker keeps that half message and asks the sender's group whether it
   committed (check-back); the restarted sender answers COMMIT from its store."
    if [ "$runs" -eq 1 ]; then
      kill -9 "$receiver"
      wait "$receiver" 2>/dev/null || true
      echo "receiver killed; starting it again"
      say "The receiver was killed too: what it had not acknowledged is delivered again, and
   its inbox makes sure no transfer is credited twice."
      start_receiver
    fi
    [ "$runs" -lt 10 ] || { echo "the sender keeps failing: $(tail -3 "$work/sender.log")"; exit 1; }
    start_sender
  fi
  sleep 0.1
done
[ -f "$work/decided" ] || { echo "the sender never finished: $(tail -3 "$work/sender.log")"; exit 1; }

# Wait (bounded) until the broker has no transaction of Bob's bank open,
# Smith's bank credited every transfer to Smith Bob's bank committed, and
# Bob's bank refunded every transfer to Carol.
committed=$(( transfers - transfers / 10 ))
to_carol=$(( transfers > 25 ? (transfers - 26) / 50 + 1 : 0 ))
for _ in $(seq ${WAIT_TENTHS:-600}); do
  if [ "$(cat "$work/credited" 2>/dev/null || echo 0)" -ge "$((committed - to_carol))" ] &&
     [ "$(cat "$work/refunded" 2>/dev/null || echo 0)" -ge "$to_carol" ] &&
     "$bin/txmqctl" --broker "$broker" tx list --state open --group bank-a |
       grep -qx "(no pending transactions)"; then
    break
  fi
  sleep 0.1
done
if [ -n "${DEMO:-}" ]; then
  say "What an operator sees (txmqctl): no transaction of Bob's bank is left open; the one
   whose sender was killed was decided by a check-back (its checks and who resolved it);
   the consumer groups have no lag."
  killed_tx=$(sed -n 's/.*killed after the local commit of .* (transaction \(.*\))$/\1/p' \
    "$work/sender.log" | tail -1)
  ctl tx list --group bank-a
  [ -z "$killed_tx" ] || ctl tx show "$killed_tx"
  ctl group list
fi
kill "$sender" "$receiver"
wait "$sender" "$receiver" 2>/dev/null || true

say "Both stores, read after the services stopped:"
echo "Bob's bank:";   "$bin/txmq-example-bank" report --db "$work/bank-a" | sed 's/^/  /'
echo "Smith's bank:"; "$bin/txmq-example-bank" report --db "$work/bank-b" | sed 's/^/  /'
a=$("$bin/txmq-example-bank" report --db "$work/bank-a")
b=$("$bin/txmq-example-bank" report --db "$work/bank-b")
bob=$(awk '/^account bob/ {print $3}' <<<"$a")
smith=$(awk '/^account smith/ {print $3}' <<<"$b")
debits=$(awk '/^debits/ {print $2}' <<<"$a");   debited=$(awk '/^debits/ {print $4}' <<<"$a")
refunds=$(awk '/^refunds/ {print $2}' <<<"$a"); refunded=$(awk '/^refunds/ {print $4}' <<<"$a")
credits=$(awk '/^credits/ {print $2}' <<<"$b");  credited=$(awk '/^credits/ {print $4}' <<<"$b")
refunds=${refunds:-0}; refunded=${refunded:-0}
echo "committed transfers: $debits (of $transfers; every tenth declined), credited: $credits, refunded: $refunds"
if [ "$((bob + smith))" -eq 1000000 ] && [ "$debited" -eq "$((credited + refunded))" ] &&
   [ "$smith" -eq "$credited" ]; then
  echo "money conserved: yes ($bob + $smith = 1000000)"
else
  echo "money conserved: NO (bob $bob, smith $smith, debited $debited, credited $credited, refunded $refunded)"
fi
if [ "$debits" -eq "$committed" ] && [ "$credits" -eq "$((committed - to_carol))" ] &&
   [ "$refunds" -eq "$to_carol" ]; then
  echo "every committed transfer applied once: yes ($credits credited, $refunds refunded)"
else
  echo "every committed transfer applied once: NO (debits $debits, credits $credits, refunds $refunds; expected $committed, $((committed - to_carol)), $to_carol)"
fi
