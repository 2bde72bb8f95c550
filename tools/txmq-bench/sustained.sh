#!/usr/bin/env bash
# Sustained durable send: what one broker looks like after it took millions
# of messages. Starts txmqd on a fresh data dir and sends --millions x 1 M
# messages into it (1 KiB, 4 producers, window 256), one txmq-bench run per
# million, printing each million's msgs/s. Then it reports:
#   - bytes the broker wrote to disk (/proc/<pid>/io write_bytes) against the
#     payload it took (write amplification),
#   - its resident memory (VmRSS, and the peak VmHWM), after
#     --open-transactions N transactions were left undecided on top (their
#     half messages stored, no end; --transaction-timeout is 1h here),
#   - the data directory's size,
#   - the time to ready after a clean stop, and after kill -9 (recovery
#     replays the commit log from the last checkpoint).
#
#   tools/txmq-bench/sustained.sh                              # 5 x 1 M, no open transactions
#   tools/txmq-bench/sustained.sh --millions 1 --open-transactions 100000
#   tools/txmq-bench/sustained.sh --millions 2 -- --segment-mb 256
#
# Arguments after -- go to txmqd. Needs a built txmq-bench and txmqd
# ($TXMQ_BENCH, default build/bin/txmq-bench of this checkout; txmqd next to
# it) and about 1.1 GB of disk per million. Uses a free port on 127.0.0.1
# and a temp dir under $TMPDIR it removes. Not used by tests or CI.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=${TXMQ_BENCH:-$here/../../build/bin/txmq-bench}
txmqd=$(dirname "$bench")/txmqd
millions=5
per_run=1000000
open_tx=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --millions) millions=$2; shift 2 ;;
    --per-run) per_run=$2; shift 2 ;; # smaller chunks, for trying the script out
    --open-transactions) open_tx=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "sustained.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -x $bench && -x $txmqd ]] || { echo "sustained.sh: build first (no $bench or $txmqd)" >&2; exit 2; }

dir=$(mktemp -d "${TMPDIR:-/tmp}/txmq-sustained.XXXXXX")
pid=''
cleanup() {
  [[ -n $pid ]] && { kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$dir"
}
trap cleanup EXIT

# start_broker: starts txmqd on $dir/data (same port on a restart); sets pid
# and ready_s, the seconds until it was ready. Restarts log at info level,
# so what recovery took is in the log.
port=''
level=warn
start_broker() {
  local listen='tcp://127.0.0.1:*'
  [[ -n $port ]] && listen="tcp://127.0.0.1:$port"
  rm -f "$dir/ready"
  local t0
  t0=$(date +%s.%N)
  "$txmqd" --listen "$listen" --data-dir "$dir/data" --ready-file "$dir/ready" \
    --log-level "$level" --transaction-timeout 1h "${open_limits[@]}" "$@" >>"$dir/txmqd.log" 2>&1 &
  pid=$!
  for _ in $(seq 1200); do [[ -s $dir/ready ]] && break; sleep 0.05; done
  [[ -s $dir/ready ]] || { echo "sustained.sh: txmqd did not start:" >&2; cat "$dir/txmqd.log" >&2; exit 1; }
  ready_s=$(python3 -c "print(f'{$(date +%s.%N) - $t0:.2f}')")
}
field() { awk -v k="$1" '$1 == k {print $2}' "/proc/$pid/$2"; }

# The transactions left open are one producer group's: txmqd's limits on
# open transactions (10,000 per group, 100,000 in all by default) must let
# them all in, unless the arguments after -- say otherwise.
open_limits=()
if [[ $open_tx -gt 10000 && " $* " != *" --max-open-transactions"* ]]; then
  open_limits=(--max-open-transactions-per-group "$open_tx"
    --max-open-transactions "$((open_tx > 100000 ? open_tx : 100000))")
fi

start_broker "$@"
endpoint=$(cat "$dir/ready")
port=${endpoint##*:}
echo "txmqd ${*:-(defaults)} on $endpoint; send p=4 w=256 1 KiB, ${millions} x ${per_run} messages"
sent=0
for i in $(seq "$millions"); do
  rate=$("$bench" --broker "$endpoint" --scenario send --producers 4 --window 256 --size 1024 \
    --count "$per_run" --duration 3600 --json | tail -1 |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["msgs_per_s"]), r["n"])')
  echo "run $i: ${rate% *} msgs/s"
  sent=$((sent + ${rate#* }))
done

if [[ $open_tx -gt 0 ]]; then
  opened=$("$bench" --broker "$endpoint" --scenario txn --producers 4 --txn-window 64 --leave-open \
    --size 1024 --count "$open_tx" --duration 3600 --json | tail -1 |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(round(r["msgs_per_s"]), r["n"])')
  echo "left ${opened#* } transactions open (${opened% *} halves/s)"
  sent=$((sent + ${opened#* })) # their half messages are stored payload too
fi

written=$(field write_bytes: io)
rss=$(field VmRSS: status)
hwm=$(field VmHWM: status)
payload=$((sent * 1024))
python3 - "$sent" "$payload" "$written" "$rss" "$hwm" <<'EOF'
import sys
sent, payload, written, rss, hwm = map(int, sys.argv[1:])
print(f"stored {sent:,} messages (open halves included), {payload / 1e9:.2f} GB of payload")
print(f"disk writes {written / 1e9:.2f} GB: {written / payload:.2f} x the payload")
print(f"RSS {rss / 1024:.0f} MB (peak {hwm / 1024:.0f} MB)")
EOF
echo "data directory $(du -sh "$dir/data" | cut -f1) (log $(du -sh "$dir/data/log" | cut -f1), index $(du -sh "$dir/data/index" | cut -f1))"

kill "$pid"
wait "$pid" || true
pid=''
level=info
start_broker "$@"
echo "restart after a clean stop: ready in $ready_s s"
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=''
start_broker "$@"
echo "restart after kill -9: ready in $ready_s s (RSS $(($(field VmRSS: status) / 1024)) MB)"
"$(dirname "$bench")/txmqctl" --broker "$endpoint" status | grep -E "messages stored|open transactions" |
  sed 's/^/  after it: /' || true
grep -hE "dedup window|recovered|replayed" "$dir/txmqd.log" | sed 's/^/  /' || true
kill "$pid"
wait "$pid" || true
pid=''
