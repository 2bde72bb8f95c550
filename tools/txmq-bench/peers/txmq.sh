# The new system: txmq (txmqd, commit log + LevelDB index, group commit, fsync before ack).
# Rows: produce p=1 w=1, produce p=1/p=4 w=$WINDOW, txn p=1/p=4 (commit/msg), consume,
# and two only txmq has: commit->visible and check-back with 10% left UNKNOWN.
# Client: txmq-bench from the txmq build, called through bin/txmq_bench, a small
# adapter (written below) that turns the harness's key=value arguments into
# txmq-bench flags plus --result-line.
#
# Drop this file into the peers' systems/ (run-with-peers.sh does) and point
# TXMQ_BENCH at a built txmq-bench; txmqd is taken from the same directory.
# Sourced where it lies in a txmq checkout, it defaults to that checkout's
# build/bin/txmq-bench; a copy has no checkout around it, so run-with-peers.sh
# exports TXMQ_BENCH (and a copy without it says so and skips txmq).
: "${TXMQ_PORT:=37800}"
: "${TXMQ_BENCH:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." 2>/dev/null && pwd)/build/bin/txmq-bench}"
: "${TXMQD:=$(dirname "$TXMQ_BENCH")/txmqd}"

# write_txmq_adapter -> $BIN/txmq_bench: `txmq_bench size=1024 mode=send window=1 ...`
# runs `txmq-bench --result-line --size 1024 --scenario send --window 1 ...`.
# The harness's scenario= is the row name (--scenario-name); mode= is ours.
write_txmq_adapter() {
  mkdir -p "$BIN"
  {
    echo '#!/usr/bin/env bash'
    echo "# Written by systems/txmq.sh: peers key=value arguments -> txmq-bench flags."
    printf 'bench_bin=%q\n' "$TXMQ_BENCH"
    cat <<'ADAPTER'
args=(--result-line)
for kv in "$@"; do
  [[ $kv == *=* ]] || { echo "txmq_bench: '$kv' is not key=value" >&2; exit 2; }
  k=${kv%%=*} v=${kv#*=}
  case $k in
    mode) args+=(--scenario "$v") ;;
    scenario) args+=(--scenario-name "$v") ;;
    no_preload) [[ $v == 1 ]] && args+=(--no-preload) ;;
    *) args+=("--${k//_/-}" "$v") ;;
  esac
done
exec "$bench_bin" "${args[@]}"
ADAPTER
  } >"$BIN/txmq_bench"
  chmod +x "$BIN/txmq_bench"
}

system_txmq() {
  local d rep pid t
  [[ -x $TXMQ_BENCH ]] || { log "no txmq-bench at $TXMQ_BENCH (set TXMQ_BENCH), skipping txmq"; return 1; }
  [[ -x $TXMQD ]] || { log "no txmqd at $TXMQD (set TXMQD), skipping txmq"; return 1; }
  port_free "$TXMQ_PORT" || { log "port $TXMQ_PORT busy, skipping txmq"; return 1; }
  write_txmq_adapter
  mkdata txmq; d=$DATA_DIR
  start_bg "$d/txmqd.log" "$TXMQD" --listen "tcp://127.0.0.1:$TXMQ_PORT" --data-dir "$d/data" \
    --flush sync --log-level warn \
    --transaction-timeout 1s --check-interval 500ms --check-interval-max 2s
  # (The check timing matters only to the check-back row: no other row leaves
  # a transaction undecided. It is txmq-bench's own for that scenario.)
  pid=$BG_PID
  wait_port "$TXMQ_PORT" 20 || { log "txmqd did not start"; stop_pid "$pid"; return 1; }
  # bench runs $BIN/<first word>; the rest are key=value arguments for the adapter.
  local c=(txmq_bench broker="tcp://127.0.0.1:$TXMQ_PORT")
  local n="txmqd --flush sync: commit-log append + fdatasync before ack (group commit: one fsync per round)"
  local nk="pull batch $WINDOW, $WINDOW in flight, an ack per message (acks batched per request, durable before reply)"
  local nt="SendHalf + empty local txn + EndTransaction(commit) per message, both answered after fsync"
  local ntb="SendHalf (carrying earlier commits) + empty local txn per message; commits confirmed after fsync in the background"
  # Every run gets its own topic (the run id keeps reruns on a kept data dir apart).
  local run_id=$$-$RANDOM
  for ((rep = 1; rep <= REPS; rep++)); do
    bench "$rep" "$pid" "${c[@]}" mode=send topic="s1-$run_id-$rep" system=txmq \
      scenario="produce p=1 w=1" producers=1 window=1 duration="$DUR" count="$COUNT" notes="$n"
    bench "$rep" "$pid" "${c[@]}" mode=send topic="s2-$run_id-$rep" system=txmq \
      scenario="produce p=1 w=$WINDOW" producers=1 window="$WINDOW" duration="$DUR" count="$COUNT" notes="$n"
    bench "$rep" "$pid" "${c[@]}" mode=send topic="s3-$run_id-$rep" system=txmq \
      scenario="produce p=4 w=$WINDOW" producers=4 window="$WINDOW" duration="$DUR" count="$COUNT" notes="$n"

    # Every message its own transaction: half message, empty local transaction, commit;
    # one in flight per producer (window 1 by definition), latency per transaction.
    bench "$rep" "$pid" "${c[@]}" mode=txn topic="t1-$run_id-$rep" system=txmq \
      scenario="txn p=1 (commit/msg)" producers=1 window=1 duration="$DUR" count="$COUNT" notes="$nt"
    bench "$rep" "$pid" "${c[@]}" mode=txn topic="t4-$run_id-$rep" system=txmq \
      scenario="txn p=4 (commit/msg)" producers=4 window=1 duration="$DUR" count="$COUNT" notes="$nt"
    # The fast path: the commit goes in the background (riding on the next half),
    # one transaction in flight per producer, then $WINDOW in flight. Timed until
    # the broker confirmed every commit.
    bench "$rep" "$pid" "${c[@]}" mode=txn topic="tb-$run_id-$rep" system=txmq \
      scenario="txn p=4 (commit/msg, background end)" producers=4 window=1 txn_end=background \
      duration="$DUR" count="$COUNT" notes="$ntb"
    bench "$rep" "$pid" "${c[@]}" mode=txn topic="tw-$run_id-$rep" system=txmq \
      scenario="txn p=4 w=$WINDOW (commit/msg, background end)" producers=4 window=1 \
      txn_end=background txn_window="$WINDOW" duration="$DUR" count="$COUNT" notes="$ntb"

    # Commit acknowledged -> a waiting consumer has the message (p50/p99).
    bench "$rep" "$pid" "${c[@]}" mode=commit-visible topic="v-$run_id-$rep" system=txmq \
      scenario="commit->visible p=1" producers=1 window=1 duration="$DUR" count="$COUNT" \
      notes="commit acked until the consumer's handler has it; msgs/s = committed transactions"
    # 10% of the local transactions answer UNKNOWN and are ended by check-back;
    # msgs/s counts all transactions until none is open.
    bench "$rep" "$pid" "${c[@]}" mode=checkback topic="c-$run_id-$rep" system=txmq \
      scenario="checkback p=4 (10% unknown)" producers=4 window=1 duration="$DUR" count="$COUNT" \
      notes="90% commit at once, 10% UNKNOWN resolved by check-back (1s timeout); until none open"
    # Prefill untimed in its own process (as the peers do), so srv_cpu covers the drain only.
    t="k-$run_id-$rep"
    "$BIN/${c[0]}" "${c[@]:1}" mode=preload topic="$t" scenario=_prefill window="$WINDOW" size="$SIZE" \
      consume_count="$CONSUME_COUNT" >/dev/null &&
      bench "$rep" "$pid" "${c[@]}" mode=consume topic="$t" no_preload=1 system=txmq \
        scenario="consume w=$WINDOW (ack/msg)" window="$WINDOW" duration="$CONSUME_DUR" \
        consume_count="$CONSUME_COUNT" notes="$nk"
  done
  fsync_probe txmq "produce p=1 w=1" "$pid" "${c[@]}" mode=send topic="p1-$run_id" window=1 count=300 duration=60
  fsync_probe txmq "produce p=1 w=$WINDOW" "$pid" "${c[@]}" mode=send topic="p2-$run_id" window="$WINDOW" count=5000 duration=60
  fsync_probe txmq "txn p=1 (commit/msg)" "$pid" "${c[@]}" mode=txn topic="p3-$run_id" producers=1 count=300 duration=60
  stop_pid "$pid"
  cp "$d/txmqd.log" "$OUT/logs/txmq.log" 2>/dev/null
}
