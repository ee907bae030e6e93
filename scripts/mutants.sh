#!/usr/bin/env bash
# cargo-mutants over the code that guards money and seats, judged by the domain crate's unit
# tests and the HTTP, fault and store tests that exercise it (DynamoDB against moto).
#   scripts/mutants.sh          the conditional writes (both stores, own-retry detection) and
#                               settlement with its amount rule
#   scripts/mutants.sh seats    seat holds, zoo slot capacity, the payment and deal state machines
#                               (one group alone: seats-holds, seats-zoo, seats-machines)
# MUTANTS_IN_PLACE=1 mutates this checkout itself and reuses its target directory (fastest; for a
# spare clone, as an interrupted run leaves a mutant in the source). Installs cargo-mutants if
# missing. The money report lands in mutants.out/, each seats group's in
# mutants.out/seats-<group>/mutants.out/ (caught.txt, missed.txt, timeout.txt, unviable.txt,
# outcomes.json). Not part of `make test`: each phase takes hours on two cores (every mutant is a
# rebuild and a test run).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants
# One run of cargo-mutants: run <name> <moto|embedded> <files...> -- <suites...>, with $re.
# The suites (and the domain crate's unit tests) are named to cargo for the build as well as
# the run, so each mutant rebuilds only those test binaries, not every suite of the workspace.
run() {
  local name=$1 peer=$2; shift 2
  local args=() tests=(--cargo-arg=--lib)
  while [ "$1" != -- ]; do args+=(--file "$1"); shift; done
  shift
  for suite in "$@"; do tests+=("--cargo-arg=--test=$suite"); done
  local out=(); [ "$name" = money ] || { mkdir -p "mutants.out/$name"; out=(--output "mutants.out/$name"); }
  local wrap=(); [ "$peer" = moto ] && wrap=(scripts/with-moto.sh)
  local code=0
  "${wrap[@]}" cargo mutants "${args[@]}" --re "$re" "${where[@]}" "${out[@]}" "${tests[@]}" \
    --exclude-re 'with ApiResult::|with Default::default\(\)|Result::from|::new\(\)' \
    --test-package api-tests --test-package shared --baseline=skip \
    --timeout "$timeout" --build-timeout 1800 || code=$?
  # 2: some mutants missed, 3: some timed out. The next group still runs; the worst is the
  # script's own exit status.
  case $code in 0 | 2 | 3) ;; *) exit "$code" ;; esac
  [ "$code" -le "$worst" ] || worst=$code
}
worst=0
# Whole-function replacements with values a Result alias cannot be built from are skipped
# (they do not compile). The unmutated tree's run is `make test`'s: cargo-mutants' own baseline
# would test only the mutated package, which holds none of the HTTP and store suites; the
# warm target directory is copied so that each mutant rebuilds only what it touches.
if [ "${MUTANTS_IN_PLACE:-0}" = 1 ]; then where=(--in-place); else where=(--copy-target=true --jobs 1); fi
case "${1:-money}" in
  money)
    # Deciding code only: conditions, transactions, counters, the amount and currency rules.
    re='in (holds|added|<impl (Store|WriteLayer) for \w+>::(put|delete|transact|add)|conditional|cond_expr|add_expr|OwnWrites::applied|attempt|already_final|mismatch|late_payment|same_currency|Outcome::of)$'
    timeout=600
    run money moto shared/src/store/memory.rs shared/src/store/dynamo.rs shared/src/store/own_writes.rs \
      shared/src/payments/settle.rs -- store_conformance money_integrity faults deals_http
    ;;
  seats | seats-*)
    # The seat, capacity and state-machine rules decide the same on either store: judged on the
    # embedded one (the moto halves of these suites skip), each group by the suites that drive it.
    # `seats` runs the three groups; `seats-holds`, `seats-zoo`, `seats-machines` one of them.
    re='in (Hold::\w+|try_hold|try_release|try_delete|put_pr|reserve|release_ops|shard_capacity|Status::can_move_to|Payment::refundable|applies|check|apply|transition|due|system_move|card_paid|missing_fields)$'
    timeout=240
    group=${1#seats}
    if [ -z "$group" ] || [ "$group" = -holds ]; then
      run seats-holds embedded shared/src/tickets/holds.rs shared/src/tickets/reservations.rs \
        -- tickets_http tickets_race tickets_lifecycle tickets_online tickets_round_trips
    fi
    if [ -z "$group" ] || [ "$group" = -zoo ]; then
      run seats-zoo embedded shared/src/zoo/slots.rs shared/src/payments/mod.rs \
        -- zoo_payments gateways money_integrity round_trips faults
    fi
    if [ -z "$group" ] || [ "$group" = -machines ]; then
      run seats-machines embedded shared/src/deals/machine.rs \
        -- deals_http round_trips emails faults outbox
    fi
    ;;
  *) echo "usage: $0 [money|seats|seats-holds|seats-zoo|seats-machines]" >&2; exit 2 ;;
esac
exit "$worst"
