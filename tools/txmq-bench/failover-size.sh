#!/usr/bin/env bash
# Failover time against the size of a group's log: starts the local
# 3-node group of scripts/cluster.sh (one etcd, --min-isr 2, lease TTL 3 s)
# on a fresh directory, fills it with N messages of 1 KiB, kills the leader
# with SIGKILL and measures the time from the kill to the next acknowledged
# send (txmqctl send, retried every 2 s at most, against all three nodes).
# A follower keeps its store applied as entries commit, so a new leader
# replays only the entries it had not applied; its log says how many, and
# how long the store took to be ready (replay and recovery of its memory).
#
#   tools/txmq-bench/failover-size.sh 1000000 [runs]     # default 10000, 1 run
#
# Uses the ports of scripts/cluster.sh (2379-2380, 7801-7803, 7901-7903,
# 9461-9463) and /tmp/txmq-failover-size; stops what it started.
set -euo pipefail
N=${1:-10000}
RUNS=${2:-1}
here=$(cd "$(dirname "$0")/../.." && pwd)
bin=${TXMQ_BIN:-$here/build/bin}
dir=/tmp/txmq-failover-size
brokers=tcp://127.0.0.1:7801,tcp://127.0.0.1:7802,tcp://127.0.0.1:7803

stop() {
  pkill -f "scripts/cluster.sh" || true
  sleep 1
  pkill -9 -x txmqd || true
  pkill -9 -x etcd || true
  sleep 1
}
trap stop EXIT

for run in $(seq 1 "$RUNS"); do
  rm -rf "$dir"
  (CLUSTER_DIR=$dir setsid "$here/scripts/cluster.sh" "$bin" > "$dir.out" 2>&1 &)
  ready=0
  for _ in $(seq 1 300); do
    for p in 9461 9462 9463; do
      if curl -s "http://127.0.0.1:$p/metrics" 2>/dev/null |
        grep -Eq '^txmq_cluster_isr_size(\{[^}]*\})? 3$'; then
        ready=1
        break 2
      fi
    done
    sleep 0.2
  done
  [ "$ready" = 1 ] || { echo "the group never had 3 in sync; see $dir.out" >&2; exit 1; }
  "$bin/txmq-bench" --broker "$brokers" --scenario preload --topic fill \
    --consume-count "$N" > /dev/null
  leader=$("$bin/txmqctl" --broker "$brokers" --json cluster status |
    python3 -c 'import json,sys; print([g["leader"] for g in json.load(sys.stdin)["groups"] if g.get("leader")][0])')
  pid=$(pgrep -f "txmqd.*--node $leader " | head -1)
  t0=$(date +%s.%N)
  kill -9 "$pid"
  for _ in $(seq 1 600); do
    if "$bin/txmqctl" --broker "$brokers" --timeout 2s send failover-probe x > /dev/null 2>&1; then
      break
    fi
  done
  t1=$(date +%s.%N)
  replay=$(grep -h "committed entries were applied while following" "$dir"/*.log | sort |
    tail -1 | sed -E 's/.*store: //' || true)
  recovered=$(grep -h "recovered .* topics" "$dir"/*.log | sort | tail -1 |
    grep -oE "in [0-9]+ ms" || true)
  echo "run $run: $N messages ($(du -sh "$dir/$leader/replica" | cut -f1) replica log):" \
    "failover $(python3 -c "print(round($t1 - $t0, 2))") s; store: ${replay:-?};" \
    "ready ${recovered:-?}"
  stop
done
