#!/usr/bin/env bash
# A replicated broker group on this machine, for trying the cluster out
# (`make cluster`): one etcd and three txmqd nodes (a, b, c) that replicate
# one log, each acknowledging only once --min-isr nodes have a write
# fsynced. Runs in the foreground; Ctrl-C stops everything. The data stays
# in CLUSTER_DIR (default ./cluster-data), so a second run starts where the
# first stopped; remove the directory for a fresh group.
#
#   scripts/cluster.sh [BUILD_BIN_DIR]          # default build/bin
#   MIN_ISR=1 scripts/cluster.sh                # acknowledge on the leader alone
#   TXMQD_ARGS="--cached-log-mb 0" scripts/cluster.sh   # more options for every node
#
# Ports on 127.0.0.1: etcd 2379 (peer 2380); clients 7801-7803; replication
# 7901-7903; HTTP (/readyz, /metrics, console) 9461-9463. Kill the leader
# (its pid is printed) and watch another node take over.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/build/bin}
dir=${CLUSTER_DIR:-$root/cluster-data}
min_isr=${MIN_ISR:-2}
read -r -a extra_args <<< "${TXMQD_ARGS:-}"
etcd=$(command -v etcd || true)
[ -n "$etcd" ] || { echo "cluster.sh: no etcd: apt-get install etcd-server (scripts/deps.sh)" >&2; exit 2; }
[ -x "$bin/txmqd" ] || { echo "cluster.sh: no $bin/txmqd: build first (make build)" >&2; exit 2; }
mkdir -p "$dir"

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "stopping the group and etcd"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop INT TERM EXIT

"$etcd" --name txmq-local --data-dir "$dir/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster txmq-local=http://127.0.0.1:2380 --logger zap --log-outputs stderr \
  2>"$dir/etcd.log" &
pids+=($!)
for _ in $(seq 100); do
  curl -s -X POST http://127.0.0.1:2379/v3/kv/range -d '{"key":"AA=="}' >/dev/null 2>&1 && break
  sleep 0.1
done

names=(a b c)
urls=()
for i in 0 1 2; do
  n=${names[$i]}
  peers=""
  for j in 0 1 2; do
    [ "$j" -eq "$i" ] && continue
    peers+="${peers:+,}${names[$j]}=tcp://127.0.0.1:$((7901 + j))"
  done
  rm -f "$dir/$n.ready"
  "$bin/txmqd" --etcd http://127.0.0.1:2379 --cluster local --group g1 --node "$n" \
    --listen "tcp://127.0.0.1:$((7801 + i))" --replication-listen "tcp://127.0.0.1:$((7901 + i))" \
    --peers "$peers" --min-isr "$min_isr" --data-dir "$dir/$n" \
    --http "127.0.0.1:$((9461 + i))" --ready-file "$dir/$n.ready" "${extra_args[@]}" 2>"$dir/$n.log" &
  pids+=($!)
  urls+=("tcp://127.0.0.1:$((7801 + i))")
  echo "node $n: pid $!, clients tcp://127.0.0.1:$((7801 + i)), http://127.0.0.1:$((9461 + i))/readyz, log $dir/$n.log"
done
leader=""
for _ in $(seq 300); do
  for i in 0 1 2; do
    [ -s "$dir/${names[$i]}.ready" ] && leader=${names[$i]} && break 2
  done
  sleep 0.1
done
[ -n "$leader" ] || { echo "no node leads after 30 s; see $dir/*.log" >&2; exit 1; }
echo
echo "group g1 led by node $leader (--min-isr $min_isr). Try:"
echo "  $bin/txmqctl --broker $(head -1 "$dir/$leader.ready") send orders hello"
echo "  curl -s http://127.0.0.1:9461/readyz http://127.0.0.1:9462/readyz http://127.0.0.1:9463/readyz"
echo "Ctrl-C stops the group."
wait -n "${pids[@]}" || true
echo "a process of the group exited; see $dir/*.log"
wait
