#!/usr/bin/env bash
# Runs the TCC transfer example: a broker, Bob's bank (a) and Smith's bank
# (b), and a coordinator making four transfers of Bob's 1000:
#   t-1 300   confirmed at both banks
#   t-2 1500  more than Bob has: bank a compensates, both cancel
#   t-3 200   its try at bank b is held back past the try timeout: the
#             coordinator cancels; bank b sees the cancel first (a null
#             cancel) and then skips the try (no hanging try)
#   t-4 100   confirmed
# Then each bank's store is printed. KEEP=1 keeps the work directory.
#   examples/tcc_transfer/run.sh [BUILD_BIN_DIR]
set -euo pipefail
. "$(dirname "$0")/../common.sh" "$@"
start_broker

banks=()
for bank in a b; do
  "$bin/txmq-example-tcc" bank --bank "$bank" --broker "$broker" --db "$work/bank-$bank" \
    2>"$work/bank-$bank.log" &
  pids+=($!)
  banks+=($!)
done

"$bin/txmq-example-tcc" coordinator --broker "$broker" --db "$work/coordinator" \
  --transfer t-1:300 --transfer t-2:1500 --transfer t-3:200 --transfer t-4:100 \
  --slow-try t-3 --try-timeout-ms 1000 --wait 60 2>"$work/coordinator.log"

# The held-back try reaches bank b three seconds after it was sent: wait
# (bounded) until all four tries are in the topic and bank b has no lag,
# then stop the banks and read their stores.
ctl() { "$bin/txmqctl" --broker "$broker" "$@"; }
for _ in $(seq 150); do
  tries=$(ctl topic list | awk '$1 == "try-b" {print $3}')
  lag=$(ctl group list | awk '$1 == "bank-b" {print $4}')
  [ "${tries:-0}" -eq 4 ] && [ "${lag:-1}" -eq 0 ] && break
  sleep 0.1
done
kill "${banks[@]}"
wait "${banks[@]}" 2>/dev/null || true
for bank in a b; do
  echo "bank $bank:"
  "$bin/txmq-example-tcc" report --bank "$bank" --db "$work/bank-$bank" \
    --id t-1 --id t-2 --id t-3 --id t-4 | sed 's/^/  /'
done
