#!/usr/bin/env bash
# cargo-mutants over the code that guards money and seats, judged by the domain crate's unit
# tests and the HTTP, fault and store tests that exercise it (DynamoDB against moto).
#   scripts/mutants.sh          the conditional writes (both stores, own-retry detection) and
#                               settlement with its amount rule
#   scripts/mutants.sh seats    seat holds, zoo slot capacity, the payment and deal state machines
# MUTANTS_IN_PLACE=1 mutates this checkout itself and reuses its target directory (fastest; for a
# spare clone, as an interrupted run leaves a mutant in the source). Installs cargo-mutants if missing. The report lands in mutants.out/ (caught.txt, missed.txt,
# timeout.txt, unviable.txt, outcomes.json). Not part of `make test`: each phase takes hours on
# two cores (every mutant is a rebuild and a test run).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
case "${1:-money}" in
  money)
    files=(shared/src/store/memory.rs shared/src/store/dynamo.rs shared/src/store/own_writes.rs
      shared/src/payments/settle.rs)
    # Deciding code only: conditions, transactions, counters, the amount and currency rules.
    re='in (holds|added|<impl (Store|WriteLayer) for \w+>::(put|delete|transact|add)|conditional|cond_expr|add_expr|OwnWrites::applied|attempt|already_final|mismatch|late_payment|same_currency|Outcome::of)$'
    tests=(--test store_conformance --test money_integrity --test faults --test deals_http)
    ;;
  seats)
    files=(shared/src/tickets/holds.rs shared/src/tickets/reservations.rs shared/src/zoo/slots.rs
      shared/src/payments/mod.rs shared/src/deals/machine.rs)
    re='in (Hold::\w+|try_hold|try_release|try_delete|put_pr|reserve|release_ops|shard_capacity|Status::can_move_to|Payment::refundable|applies|check|apply|transition|due|system_move|card_paid|missing_fields)$'
    tests=(--test tickets_http --test tickets_race --test zoo_payments --test deals_http)
    ;;
  *) echo "usage: $0 [money|seats]" >&2; exit 2 ;;
esac
args=()
for f in "${files[@]}"; do args+=(--file "$f"); done
# Whole-function replacements with values a Result alias cannot be built from are skipped
# (they do not compile). The unmutated tree's run is `make test`'s: cargo-mutants' own baseline
# would test only the mutated package, which holds none of the HTTP and store suites; the
# warm target directory is copied so that each mutant rebuilds only what it touches.
if [ "${MUTANTS_IN_PLACE:-0}" = 1 ]; then where=(--in-place); else where=(--copy-target=true --jobs 1); fi
scripts/with-moto.sh cargo mutants "${args[@]}" --re "$re" "${where[@]}" \
  --exclude-re 'with ApiResult::|with Default::default\(\)|Result::from|::new\(\)' \
  --test-package api-tests --test-package shared --baseline=skip \
  --timeout 600 --build-timeout 1800 \
  -- "${tests[@]}" --lib
