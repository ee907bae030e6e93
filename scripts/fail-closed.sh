#!/usr/bin/env bash
# A deployed process (TABLE_NAME set) with a blank, short or development secret must refuse to
# start with one clear line, before touching AWS. Runs the local server binary that way.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  cargo build -q -p local --bin local   # as `make run` builds it: without the AWS adapters
fi
bin=${1:-${CARGO_TARGET_DIR:-target}/debug/local}
check() {
  local want=$1; shift
  out=$(env -i PATH="$PATH" TABLE_NAME=fail-closed-check "$@" "$bin" 2>&1)
  rc=$?
  if [ $rc -eq 0 ] || ! grep -q "refusing to start: .*$want" <<<"$out"; then
    echo "fail-closed: expected a refusal naming $want, got rc=$rc: $out" >&2
    exit 1
  fi
  echo "fail-closed: refused as expected ($want)"
}
jwt=JWT_SECRET=0123456789abcdef0123456789abcdef
key=TICKET_SIGNING_KEY=fedcba9876543210fedcba9876543210
check JWT_SECRET JWT_SECRET= "$key"
check JWT_SECRET "JWT_SECRET=                                        " "$key"
check JWT_SECRET JWT_SECRET=dev-secret-change-me "$key"
check JWT_SECRET_PREVIOUS "$jwt" "$key" JWT_SECRET_PREVIOUS=dev-secret-change-me
check TICKET_SIGNING_KEY "$jwt"
check TICKET_SIGNING_KEY "$jwt" TICKET_SIGNING_KEY=dev-ticket-key-change-me
check SANDBOX_SECRET "$jwt" "$key" SANDBOX_ENABLED=true
check SANDBOX_ENABLED "$jwt" "$key" ZOO_PAYMENT_GATEWAY=sandbox
if [ $# -eq 0 ]; then
  # Without the AWS adapters, a process that names a table is refused, not run on the embedded store.
  check "TABLE_NAME names an AWS resource" "$jwt" "$key"
fi
