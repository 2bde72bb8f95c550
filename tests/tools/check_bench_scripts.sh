#!/usr/bin/env bash
# The benchmark scripts find the repository from their own location, not
# from one machine's absolute paths: a copy of them in a fake checkout
# (fake txmq-bench, txmqd and peers harness) must use that checkout's files,
# run from any directory, with none of the path variables set.
set -euo pipefail
source_dir=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/txmq-scripts-XXXXXX")
trap 'rm -rf "$work"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

repo=$work/checkout/txmq
mkdir -p "$repo/tools/txmq-bench/peers" "$repo/build/bin"
cp "$source_dir/tools/txmq-bench/run-with-peers.sh" "$repo/tools/txmq-bench/"
cp "$source_dir/tools/txmq-bench/peers/txmq.sh" "$source_dir/tools/txmq-bench/peers/txmq3.sh" \
  "$repo/tools/txmq-bench/peers/"
for b in txmq-bench txmqd; do
  printf '#!/bin/sh\nexit 0\n' >"$repo/build/bin/$b"
  chmod +x "$repo/build/bin/$b"
done
# A peers harness that only records what it was given.
harness=$work/harness
mkdir -p "$harness/systems"
cat >"$harness/run-all.sh" <<HARNESS
#!/usr/bin/env bash
ALL_SYSTEMS="redis nats"
echo "\$TXMQ_BENCH \$TXMQD \$*" >"$work/seen"
mkdir -p "\$(dirname "\$0")/out/run-1"   # where a real harness leaves its results
HARNESS
chmod +x "$harness/run-all.sh"
clean_env=(env -u TXMQ_BENCH -u TXMQD -u PEERS_SRC -u TXMQ_PEERS_DIR)

echo "== run-with-peers.sh takes txmq-bench and txmqd from its checkout"
(cd / && "${clean_env[@]}" PEERS_SRC="$harness" TXMQ_PEERS_DIR="$work/copy" \
  "$repo/tools/txmq-bench/run-with-peers.sh" --reps 1) >"$work/out" 2>&1 ||
  fail "run-with-peers.sh failed: $(cat "$work/out")"
want="$repo/build/bin/txmq-bench $repo/build/bin/txmqd --only redis,nats,txmq --reps 1"
[[ $(cat "$work/seen") == "$want" ]] || fail "harness got '$(cat "$work/seen")', want '$want'"

echo "== run-with-peers.sh looks for the harness beside its checkout"
rc=0
(cd / && "${clean_env[@]}" TXMQ_PEERS_DIR="$work/copy" \
  "$repo/tools/txmq-bench/run-with-peers.sh") >"$work/out" 2>&1 || rc=$?
[[ $rc -ne 0 ]] || fail "ran without a harness"
grep -qF "no peers harness at $work/checkout/shared/peers (set PEERS_SRC)" "$work/out" ||
  fail "the error does not name the default beside the checkout: $(cat "$work/out")"

echo "== peers/txmq.sh, sourced in place, defaults to its checkout's txmq-bench"
got=$(cd / && "${clean_env[@]}" bash -c 'source "$1" && echo "$TXMQ_BENCH $TXMQD"' _ \
  "$repo/tools/txmq-bench/peers/txmq.sh")
want="$repo/build/bin/txmq-bench $repo/build/bin/txmqd"
[[ $got == "$want" ]] || fail "txmq.sh: got '$got', want '$want'"
echo "ok"
