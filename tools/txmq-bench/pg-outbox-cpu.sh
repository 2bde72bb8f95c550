#!/usr/bin/env bash
# What the PostgreSQL outbox costs in CPU and WAL per transaction, a
# measure that depends less on what else the machine runs than commits/s:
# starts a throwaway PostgreSQL (as pg-outbox.sh does), then runs
# txmq-bench-pg-outbox --reps times for each writer count and mode (bare,
# outbox-add, outbox) and prints, per transaction, the CPU time of the
# PostgreSQL server and all its backends (utime + stime from /proc, ended
# backends included through the postmaster's children times), the CPU time
# of the bench process with its txmqd (writers, relay, consumer, broker),
# and the WAL written; medians over the reps.
#
#   tools/txmq-bench/pg-outbox-cpu.sh                        # writers 1 4 16, 2 reps, 2000 tx
#   tools/txmq-bench/pg-outbox-cpu.sh --writers "1 4" --reps 3 --transactions 5000
#
# $TXMQ_BENCH_PG names the txmq-bench-pg-outbox to run (default: this
# checkout's build/bin; txmqd beside it). Needs Debian's postgresql and
# GNU time (/usr/bin/time). Not used by tests or CI.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=${TXMQ_BENCH_PG:-$here/../../build/bin/txmq-bench-pg-outbox}
writers="1 4 16"
reps=2
transactions=2000
while [[ $# -gt 0 ]]; do
  case $1 in
    --writers) writers=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --transactions) transactions=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "pg-outbox-cpu.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -x $bench ]] || { echo "pg-outbox-cpu.sh: no $bench" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "pg-outbox-cpu.sh: needs GNU time (/usr/bin/time)" >&2; exit 2; }
. "$here/../../scripts/scratch_postgres.sh"
dir=$(mktemp -d "${TMPDIR:-/tmp}/txmq-pg-outbox-cpu.XXXXXX")
cleanup() {
  stop_scratch_postgres
  rm -rf "$dir"
}
trap cleanup EXIT
start_scratch_postgres "$dir"
conninfo="host=127.0.0.1 port=$pg_port user=txmq dbname=postgres"
psql=("$pgbin/psql" -h 127.0.0.1 -p "$pg_port" -U txmq -d postgres -X -q -t -A)
echo "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port; $bench"

# Clock ticks of the server: the postmaster, its live children, and the
# children that ended (fields 14-17 of /proc/PID/stat).
server_ticks() {
  local total=0 p v
  for p in $pg_pid $(pgrep -P "$pg_pid"); do
    for v in $(cut -d' ' -f14-17 "/proc/$p/stat" 2>/dev/null); do total=$((total + v)); done
  done
  echo "$total"
}
hz=$(getconf CLK_TCK)

# Not measured: the first run creates the tables and warms the caches.
"$bench" --pg "$conninfo" --mode outbox-add --writers 1 --transactions 200 --json \
  >/dev/null 2>>"$dir/bench.log"

results=$dir/results.jsonl
for w in $writers; do
  for rep in $(seq "$reps"); do
    for mode in bare outbox-add outbox; do
      t0=$(server_ticks)
      wal0=$("${psql[@]}" -c "SELECT pg_current_wal_lsn()")
      line=$(PGOPTIONS='-c client_min_messages=warning' /usr/bin/time -f "time %U %S" -o "$dir/time" \
        "$bench" --pg "$conninfo" --mode "$mode" --writers "$w" --transactions "$transactions" \
        --json 2>>"$dir/bench.log")
      t1=$(server_ticks)
      wal=$("${psql[@]}" -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal0')")
      read -r _ user sys <"$dir/time"
      extra=$(python3 -c "n=$transactions; print(',\"server_cpu_ms\":%.3f,\"bench_cpu_ms\":%.3f,\"wal_bytes\":%.0f}' % (($t1-$t0)*1000/$hz/n, ($user+$sys)*1000/n, $wal/n))")
      line="${line%\}}$extra"
      echo "$line" >>"$results"
      echo "writers=$w rep=$rep $line"
    done
  done
done

python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(w, mode, key):
    return statistics.median([r[key] for r in rows if r["writers"] == w and r["mode"] == mode])
print()
print("| writers | mode | commits/s | server CPU / tx | bench+txmqd CPU / tx | CPU / tx, all | / bare | WAL / tx |")
print("|---|---|---|---|---|---|---|---|")
for w in sorted({r["writers"] for r in rows}):
    bare = med(w, "bare", "server_cpu_ms") + med(w, "bare", "bench_cpu_ms")
    for mode in ("bare", "outbox-add", "outbox"):
        s, b = med(w, mode, "server_cpu_ms"), med(w, mode, "bench_cpu_ms")
        print(f"| {w} | {mode} | {med(w, mode, 'commits_per_s'):,.0f} | {s:.2f} ms | {b:.2f} ms "
              f"| {s + b:.2f} ms | {(s + b) / bare:.2f}x | {med(w, mode, 'wal_bytes'):,.0f} B |")
EOF
