# txmq as a replicated group: one etcd and three txmqd nodes (a, b, c) on
# loopback, one replicated log, every write acknowledged only once --min-isr 2
# nodes have it fsynced (scripts/cluster.sh's layout on other ports).
# Rows (system txmq3): produce p=1 w=1, produce p=4 w=$WINDOW, txn p=4
# (commit/msg); the same definitions and client as systems/txmq.sh, the
# producers given all three nodes' URLs (they find the leader themselves).
# srv_cpu is the leader's txmqd only (the followers and etcd are not counted).
#
# Needs systems/txmq.sh beside it (its adapter and TXMQ_BENCH/TXMQD) and etcd
# on PATH (TXMQ_ETCD). Ports on 127.0.0.1 (TXMQ3_PORT, default 37810):
# clients +1..+3, replication +11..+13, HTTP +21..+23, etcd +31/+32.
: "${TXMQ3_PORT:=37810}"
: "${TXMQ3_MIN_ISR:=2}"
: "${TXMQ_ETCD:=$(command -v etcd || true)}"

system_txmq3() {
  local d rep i j n peers urls="" pids=() etcd_pid leader="" lpid="" base=$TXMQ3_PORT
  local names=(a b c) p
  [[ $(type -t write_txmq_adapter) == function ]] ||
    source "$(dirname "${BASH_SOURCE[0]}")/txmq.sh"
  [[ -x $TXMQ_BENCH ]] || { log "no txmq-bench at $TXMQ_BENCH (set TXMQ_BENCH), skipping txmq3"; return 1; }
  [[ -x $TXMQD ]] || { log "no txmqd at $TXMQD (set TXMQD), skipping txmq3"; return 1; }
  [[ -x $TXMQ_ETCD ]] || { log "no etcd (apt-get install etcd-server or set TXMQ_ETCD), skipping txmq3"; return 1; }
  for p in $((base + 1)) $((base + 2)) $((base + 3)) $((base + 11)) $((base + 12)) $((base + 13)) \
    $((base + 21)) $((base + 22)) $((base + 23)) $((base + 31)) $((base + 32)); do
    port_free "$p" || { log "port $p busy, skipping txmq3"; return 1; }
  done
  write_txmq_adapter
  mkdata txmq3; d=$DATA_DIR

  start_bg "$d/etcd.log" "$TXMQ_ETCD" --name txmq3 --data-dir "$d/etcd" \
    --listen-client-urls "http://127.0.0.1:$((base + 31))" \
    --advertise-client-urls "http://127.0.0.1:$((base + 31))" \
    --listen-peer-urls "http://127.0.0.1:$((base + 32))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((base + 32))" \
    --initial-cluster "txmq3=http://127.0.0.1:$((base + 32))"
  etcd_pid=$BG_PID
  wait_port $((base + 31)) 20 || { log "etcd did not start"; stop_pid "$etcd_pid"; return 1; }

  for i in 0 1 2; do
    n=${names[$i]}
    peers=""
    for j in 0 1 2; do
      [[ $j == "$i" ]] && continue
      peers+="${peers:+,}${names[$j]}=tcp://127.0.0.1:$((base + 11 + j))"
    done
    start_bg "$d/$n.log" "$TXMQD" --etcd "http://127.0.0.1:$((base + 31))" --cluster bench \
      --group g1 --node "$n" --listen "tcp://127.0.0.1:$((base + 1 + i))" \
      --replication-listen "tcp://127.0.0.1:$((base + 11 + i))" --peers "$peers" \
      --min-isr "$TXMQ3_MIN_ISR" --data-dir "$d/$n" --http "127.0.0.1:$((base + 21 + i))" \
      --ready-file "$d/$n.ready" --flush sync --log-level warn
    pids+=("$BG_PID")
    urls+="${urls:+,}tcp://127.0.0.1:$((base + 1 + i))"
  done
  stop_txmq3() {
    local q
    for q in "${pids[@]}"; do stop_pid "$q"; done
    stop_pid "$etcd_pid"
    for q in etcd a b c; do cp "$d/$q.log" "$OUT/logs/txmq3-$q.log" 2>/dev/null; done
  }
  # The leader writes its ready file; then wait until all three are in the ISR.
  for ((i = 0; i < 300; i++)); do
    for j in 0 1 2; do
      [[ -s $d/${names[$j]}.ready ]] && leader=$j && break 2
    done
    sleep 0.1
  done
  [[ -n $leader ]] || { log "txmq3: no node leads after 30 s; see $d/*.log"; stop_txmq3; return 1; }
  lpid=${pids[$leader]}
  for ((i = 0; i < 300; i++)); do
    curl -s "http://127.0.0.1:$((base + 21 + leader))/metrics" |
      grep -Eq '^txmq_cluster_isr_size(\{[^}]*\})? 3$' && break
    sleep 0.1
  done
  log "txmq3: node ${names[$leader]} (pid $lpid) leads; ISR: $(curl -s \
    "http://127.0.0.1:$((base + 21 + leader))/metrics" | grep '^txmq_cluster_isr_size')"

  local c=(txmq_bench broker="$urls")
  local n1="3 txmqd replicas, --min-isr $TXMQ3_MIN_ISR --flush sync: acked once 2 nodes fsynced; srv_cpu = leader only"
  local nt="SendHalf + empty local txn + EndTransaction(commit) per message, each acked once 2 of 3 nodes fsynced"
  local run_id=$$-$RANDOM
  for ((rep = 1; rep <= REPS; rep++)); do
    bench "$rep" "$lpid" "${c[@]}" mode=send topic="r1-$run_id-$rep" system=txmq3 \
      scenario="produce p=1 w=1" producers=1 window=1 duration="$DUR" count="$COUNT" notes="$n1"
    bench "$rep" "$lpid" "${c[@]}" mode=send topic="r3-$run_id-$rep" system=txmq3 \
      scenario="produce p=4 w=$WINDOW" producers=4 window="$WINDOW" duration="$DUR" count="$COUNT" notes="$n1"
    bench "$rep" "$lpid" "${c[@]}" mode=txn topic="rt4-$run_id-$rep" system=txmq3 \
      scenario="txn p=4 (commit/msg)" producers=4 window=1 duration="$DUR" count="$COUNT" notes="$nt"
  done
  stop_txmq3
}
