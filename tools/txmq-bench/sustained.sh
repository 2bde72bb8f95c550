#!/usr/bin/env bash
# Sustained durable send: how throughput holds up as one broker's store grows.
# Starts txmqd on a fresh data dir, runs `txmq-bench --scenario send` into it
# --runs times back to back (each --dur seconds, 4 producers, window 256,
# 1 KiB), and prints each run's msgs/s, then what LevelDB's own log says about
# write stalls and compaction. The harness scenarios measure a few seconds
# each; this is the view of a broker that has taken millions of messages.
#
#   tools/txmq-bench/sustained.sh                                  # defaults
#   tools/txmq-bench/sustained.sh --runs 8 -- --write-buffer-mb 32 --table-file-mb 8
#
# Arguments after -- go to txmqd. Needs a built txmq-bench and txmqd
# ($TXMQ_BENCH, default build/bin/txmq-bench of this checkout; txmqd next to
# it). Uses a free port on 127.0.0.1 and a temp dir it removes. Not used by
# tests or CI.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=${TXMQ_BENCH:-$here/../../build/bin/txmq-bench}
txmqd=$(dirname "$bench")/txmqd
runs=6
dur=5
while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --dur) dur=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sustained.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -x $bench && -x $txmqd ]] || { echo "sustained.sh: build first (no $bench or $txmqd)" >&2; exit 2; }

dir=$(mktemp -d /tmp/txmq-sustained.XXXXXX)
"$txmqd" --listen 'tcp://127.0.0.1:*' --data-dir "$dir/data" --ready-file "$dir/ready" \
  --log-level warn "$@" >"$dir/txmqd.log" 2>&1 &
pid=$!
cleanup() {
  [[ -n $pid ]] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 100); do [[ -s $dir/ready ]] && break; sleep 0.1; done
[[ -s $dir/ready ]] || { echo "sustained.sh: txmqd did not start:" >&2; cat "$dir/txmqd.log" >&2; exit 1; }
endpoint=$(cat "$dir/ready")

echo "txmqd $* on $endpoint; send p=4 w=256 1 KiB, ${runs} x ${dur} s"
for i in $(seq "$runs"); do
  rate=$("$bench" --broker "$endpoint" --scenario send --producers 4 --window 256 --size 1024 \
    --duration "$dur" --json | tail -1 | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["msgs_per_s"]))')
  echo "run $i: $rate msgs/s"
done
kill "$pid"
wait "$pid" || true
pid=''  # reaped: cleanup must not signal a reused pid
l0_stalls=$(grep -c 'Too many L0 files; waiting' "$dir"/data/LOG* || true)
memtable_stalls=$(grep -c 'Current memtable full; waiting' "$dir"/data/LOG* || true)
compacted=$({ grep -ho '=> [0-9]* bytes' "$dir"/data/LOG* || true; } | awk '{s += $2} END {printf "%.1f", s / 1e9}')
echo "LevelDB: writes stalled $l0_stalls times on too many level-0 files and $memtable_stalls" \
  "times on a full memtable; ${compacted} GB written by compaction, $(du -sh "$dir/data" | cut -f1) on disk"
