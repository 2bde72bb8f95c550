#!/usr/bin/env bash
# What the PostgreSQL outbox costs: starts a throwaway PostgreSQL (initdb
# into a temp dir as user nobody, a free port on 127.0.0.1, the server's
# defaults: fsync on, synchronous_commit on, so a COMMIT is durable as in
# production), then runs txmq-bench-pg-outbox for each writer count in
# --writers, --reps times each, alternating the bare business transaction
# and the same transaction with an outbox row relayed through a txmqd
# (--flush sync) to a consumer, with the defaults (outbox: relays poll
# every 100 ms) and with notify_on_add on (outbox-notify: relays woken by
# NOTIFY), and the rows added with no relay running (outbox-add: the
# insert's own cost). Prints each
# run, then the medians: commits/s, their ratio to bare (the overhead of
# reliability), relayed messages/s and the relay lag (COMMIT returned ->
# consumer received) p50 and p99.
#
#   tools/txmq-bench/pg-outbox.sh                          # writers 1 4 16, 3 reps, 5000 tx
#   tools/txmq-bench/pg-outbox.sh --writers "1 4" --reps 5 --transactions 20000
#
# Needs a built txmq-bench-pg-outbox ($TXMQ_BENCH_PG, default
# build/bin/txmq-bench-pg-outbox of this checkout; txmqd next to it) and
# Debian's postgresql. Removes its temp dir and stops the server on exit.
# Not used by tests or CI.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=${TXMQ_BENCH_PG:-$here/../../build/bin/txmq-bench-pg-outbox}
writers="1 4 16"
reps=3
transactions=5000
while [[ $# -gt 0 ]]; do
  case $1 in
    --writers) writers=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --transactions) transactions=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "pg-outbox.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
[[ -x $bench ]] || { echo "pg-outbox.sh: no $bench: build it (cmake --build build --target txmq-bench-pg-outbox)" >&2; exit 2; }
. "$here/../../scripts/scratch_postgres.sh"
dir=$(mktemp -d "${TMPDIR:-/tmp}/txmq-pg-outbox.XXXXXX")
cleanup() {
  stop_scratch_postgres
  rm -rf "$dir"
}
trap cleanup EXIT
start_scratch_postgres "$dir"
conninfo="host=127.0.0.1 port=$pg_port user=txmq dbname=postgres"
echo "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port (fsync on, synchronous_commit on)"

results=$dir/results.jsonl
for w in $writers; do
  for rep in $(seq "$reps"); do
    for mode in bare outbox-add outbox outbox-notify; do
      line=$(PGOPTIONS='-c client_min_messages=warning' "$bench" --pg "$conninfo" --mode "$mode" --writers "$w" --transactions "$transactions" --json)
      echo "$line" >>"$results"
      echo "writers=$w rep=$rep $line"
    done
  done
done

python3 - "$results" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(w, mode, key):
    vals = [r[key] for r in rows if r["writers"] == w and r["mode"] == mode and key in r]
    return statistics.median(vals) if vals else float("nan")
print()
print("| writers | mode | commits/s | bare / this | relayed msgs/s | relay lag p50 | relay lag p99 |")
print("|---|---|---|---|---|---|---|")
for w in sorted({r["writers"] for r in rows}):
    bare = med(w, "bare", "commits_per_s")
    print(f"| {w} | bare | {bare:,.0f} | 1.00x | | | |")
    for mode in ("outbox-add", "outbox", "outbox-notify"):
        out = med(w, mode, "commits_per_s")
        print(f"| {w} | {mode} | {out:,.0f} | {bare / out:.2f}x | {med(w, mode, 'relayed_per_s'):,.0f} "
              f"| {med(w, mode, 'lag_p50_ms'):.2f} ms | {med(w, mode, 'lag_p99_ms'):.2f} ms |")
EOF
