#!/usr/bin/env bash
# A deployed process (TABLE_NAME set) with a blank, short or development secret must refuse to
# start with one clear line, before touching AWS. Runs the local server binary that way.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/local}
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
check JWT_SECRET JWT_SECRET=
check JWT_SECRET JWT_SECRET=dev-secret-change-me
check SANDBOX_SECRET JWT_SECRET=0123456789abcdef0123456789abcdef SANDBOX_ENABLED=true
check SANDBOX_ENABLED JWT_SECRET=0123456789abcdef0123456789abcdef ZOO_PAYMENT_GATEWAY=sandbox
