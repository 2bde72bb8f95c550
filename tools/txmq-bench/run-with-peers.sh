#!/usr/bin/env bash
# Measures txmq and its peers (RabbitMQ, Redis, NATS, plus the disk / ZeroMQ /
# LevelDB limits) in one run of the peers harness, so all rows share the same
# machine state.
#
#   tools/txmq-bench/run-with-peers.sh                          # txmq + every peer
#   tools/txmq-bench/run-with-peers.sh --only txmq,redis,leveldb --reps 1
#   TXMQ_BENCH=/path/to/build/bin/txmq-bench tools/txmq-bench/run-with-peers.sh
#   tools/txmq-bench/run-with-peers.sh --txmq-cluster --only txmq,rabbitmq --reps 3
#
# --txmq-cluster (ours, not the harness's) adds the system txmq3: one etcd and
# three txmqd replicas (--min-isr 2) on loopback, measured with the same client
# (peers/txmq3.sh; needs etcd).
#
# Every argument goes to the harness's run-all.sh (--only, --reps, --dur,
# --no-install, --no-probe, --keep-data); so does every knob of its
# lib/common.sh (SIZE=, WINDOW=, ...). Without --only, txmq is added to the
# harness's own system list.
#
# The harness folder is read-only and writes bin/ and out/ into itself, so it
# runs from a copy: $TXMQ_PEERS_DIR (default /tmp/txmq-peers), refreshed from
# $PEERS_SRC (default ../shared/peers beside this repository) on every call;
# earlier out/ runs and built clients in the copy are kept. Needs a built
# txmq-bench and txmqd ($TXMQ_BENCH, default build/bin/txmq-bench of this
# repository; txmqd next to it). Paths are found from this script's own
# place, so any checkout works from any directory. Not used by tests or CI.
# The harness apt-get installs missing packages.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
peers_src=${PEERS_SRC:-$(dirname "$repo")/shared/peers}
dest=${TXMQ_PEERS_DIR:-/tmp/txmq-peers}
export TXMQ_BENCH=${TXMQ_BENCH:-$repo/build/bin/txmq-bench}
export TXMQD=${TXMQD:-$(dirname "$TXMQ_BENCH")/txmqd}

die() {
  echo "run-with-peers: $*" >&2
  exit 1
}
[[ -f $peers_src/run-all.sh ]] || die "no peers harness at $peers_src (set PEERS_SRC)"
[[ -x $TXMQ_BENCH ]] || die "no txmq-bench at $TXMQ_BENCH: build it (target txmq-bench) or set TXMQ_BENCH"
[[ -x $TXMQD ]] || die "no txmqd at $TXMQD: build it (target txmqd) or set TXMQD"
case $dest in
  / | /tmp | /tmp/ | "$peers_src") die "refusing to use $dest as the copy" ;;
esac

# Copy the harness (not its bin/ or out/). cp -p keeps the sources' times, so
# build.sh does not rebuild clients that are already in the copy's bin/.
mkdir -p "$dest"
for f in "$peers_src"/*; do
  case $(basename "$f") in bin | out) continue ;; esac
  rm -rf "${dest:?}/$(basename "$f")"
  cp -rp "$f" "$dest/"
done
chmod -R u+w "$dest"
cp "$here/peers/txmq.sh" "$dest/systems/txmq.sh"
cp "$here/peers/txmq3.sh" "$dest/systems/txmq3.sh"

# Without --only, run the harness's own list plus txmq; --txmq-cluster adds
# txmq3 to whichever list runs.
args=()
cluster=0
for a in "$@"; do
  if [[ $a == --txmq-cluster ]]; then cluster=1; else args+=("$a"); fi
done
extra=""
[[ $cluster == 1 ]] && extra=",txmq3"
has_only=0
for ((i = 0; i < ${#args[@]}; i++)); do
  if [[ ${args[$i]} == --only ]]; then
    has_only=1
    ((i + 1 < ${#args[@]})) || die "--only needs a list"
    args[i + 1]="${args[$((i + 1))]}$extra"
  fi
done
if [[ $has_only == 0 ]]; then
  all=$(sed -n 's/^ALL_SYSTEMS="\(.*\)"$/\1/p' "$dest/run-all.sh")
  [[ -n $all ]] || die "cannot read ALL_SYSTEMS from $dest/run-all.sh; pass --only"
  args=(--only "${all// /,},txmq$extra" "${args[@]}")
fi

echo "run-with-peers: harness copy $dest; txmq-bench $TXMQ_BENCH; txmqd $TXMQD" >&2
echo "run-with-peers: $dest/run-all.sh ${args[*]}" >&2
rc=0
"$dest/run-all.sh" "${args[@]}" || rc=$?
latest=$(find "$dest/out" -mindepth 1 -maxdepth 1 -type d -printf '%T@ %p\n' 2>/dev/null |
  sort -n | tail -1 | cut -d" " -f2-)
echo
echo "run-with-peers: output in ${latest:-$dest/out/} (raw.tsv, table.md, run.log, logs/)"
echo "run-with-peers: aggregate several runs: python3 $dest/aggregate.py $dest/out/*/raw.tsv"
exit "$rc"
