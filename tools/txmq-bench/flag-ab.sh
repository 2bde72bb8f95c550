#!/usr/bin/env bash
# txmqd flags against each other on one scenario: for each repetition and
# each variant in turn (alternating, so the machine's noise falls on all of
# them), starts txmqd with the variant's flags on a fresh data dir, runs one
# txmq-bench against it and reports per variant:
#   msgs/s, the broker's CPU per message (utime + stime over the run, from
#   /proc/<pid>/stat) and the bytes it wrote to disk per message
#   (/proc/<pid>/io write_bytes), then the median of each over the reps.
#
#   tools/txmq-bench/flag-ab.sh --reps 3 base= 'wb32=--write-buffer-mb 32' -- \
#       --scenario txn --producers 4 --txn-end background --txn-window 256 --duration 8
#
# A variant is LABEL=FLAGS (FLAGS may be empty). Arguments after -- go to
# txmq-bench. Needs a built txmq-bench and txmqd ($TXMQ_BENCH, default
# build/bin/txmq-bench of this checkout; txmqd next to it). Uses a free port
# on 127.0.0.1 and a temp dir under $TMPDIR it removes. Not used by tests
# or CI.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bench=${TXMQ_BENCH:-$here/../../build/bin/txmq-bench}
txmqd=$(dirname "$bench")/txmqd
reps=3
variants=()
while [ $# -gt 0 ]; do
  case $1 in
    --reps) reps=$2; shift 2 ;;
    --) shift; break ;;
    *=*) variants+=("$1"); shift ;;
    *) echo "flag-ab.sh: '$1' is not LABEL=FLAGS (see the top of this file)" >&2; exit 2 ;;
  esac
done
[ ${#variants[@]} -ge 1 ] || { echo "flag-ab.sh: name at least one LABEL=FLAGS" >&2; exit 2; }
[ $# -ge 1 ] || { echo "flag-ab.sh: give txmq-bench's arguments after --" >&2; exit 2; }
[ -x "$bench" ] && [ -x "$txmqd" ] || { echo "flag-ab.sh: no $bench or $txmqd: build first" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/txmq-flag-ab.XXXXXX")
pid=
cleanup() { [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
tick=$(getconf CLK_TCK)

for rep in $(seq 1 "$reps"); do
  for v in "${variants[@]}"; do
    label=${v%%=*}
    read -r -a flags <<< "${v#*=}"
    rm -rf "$work/data"
    "$txmqd" --listen "tcp://127.0.0.1:$port" --data-dir "$work/data" --ready-file "$work/ready" \
      "${flags[@]}" > "$work/txmqd.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do [ -s "$work/ready" ] && break; sleep 0.1; done
    [ -s "$work/ready" ] || { echo "flag-ab.sh: txmqd $label did not start:" >&2; cat "$work/txmqd.log" >&2; exit 1; }
    read -r u0 s0 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    line=$("$bench" --broker "tcp://127.0.0.1:$port" "$@" 2>&1 | tail -1)
    read -r u1 s1 < <(awk '{print $14, $15}' "/proc/$pid/stat")
    written=$(awk '/^write_bytes/ {print $2}' "/proc/$pid/io")
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
    rm -f "$work/ready"
    rate=$(grep -o '[0-9,]* msgs/s' <<< "$line" | tr -d ',' | cut -d' ' -f1)
    n=$(grep -o 'n=[0-9]*' <<< "$line" | cut -d= -f2)
    [ -n "$rate" ] && [ -n "$n" ] || { echo "flag-ab.sh: no result from txmq-bench: $line" >&2; exit 1; }
    cpu_us=$(( (u1 + s1 - u0 - s0) * 1000000 / tick ))
    echo "$label $rate $(( cpu_us * 10 / n )) $(( written / n ))" >> "$work/results"
    printf '%-12s rep %d: %8d msgs/s  broker CPU %5.1f us/msg  disk %6d B/msg\n' \
      "$label" "$rep" "$rate" "$(( cpu_us * 10 / n ))e-1" "$(( written / n ))"
  done
done

echo
echo "medians of $reps:"
for v in "${variants[@]}"; do
  label=${v%%=*}
  python3 - "$label" "$work/results" <<'PY'
import statistics, sys
label, path = sys.argv[1], sys.argv[2]
rows = [l.split() for l in open(path) if l.split()[0] == label]
med = lambda i: statistics.median(float(r[i]) for r in rows)
print(f"  {label:<12} {med(1):>8,.0f} msgs/s  broker CPU {med(2) / 10:5.1f} us/msg  disk {med(3):>6,.0f} B/msg")
PY
done
