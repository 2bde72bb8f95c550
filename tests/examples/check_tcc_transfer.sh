#!/usr/bin/env bash
# Runs the TCC transfer example and checks both banks' final state: money
# conserved (Bob's 1000 = his balance + what Smith got), nothing left frozen
# or pending, t-1 and t-4 confirmed, t-2 cancelled because Bob had too
# little, and t-3's held-back try skipped at bank b after a null cancel.
set -euo pipefail
out=$("$1" "$2")
echo "$out"
grep -qx "t-1: confirmed" <<<"$out"
grep -qx "t-2: cancelled (Bob has [0-9]*, not 1500)" <<<"$out"
grep -qx "t-3: cancelled (a bank did not answer in time)" <<<"$out"
grep -qx "t-4: confirmed" <<<"$out"
grep -qx "  balance bob 600" <<<"$out"
grep -qx "  balance smith 400" <<<"$out"
! grep -q "^  frozen/\|^  pending/" <<<"$out"
# Bank b: the cancel of t-3 came first (fence), its try later (skipped).
grep -qx "  try t-3 skipped" <<<"$out"
# Bank a could not try t-2 (Bob had too little): nothing to cancel there.
grep -qx "  try t-2 compensated" <<<"$out"
