#!/usr/bin/env bash
# Runs schemathesis against the local server: every operation of openapi/openapi.json, checking
# for 5xx answers and for answers (status, content type, body) that break the document.
# Starts the debug build of the local server (embedded store) on a free 127.0.0.1 port with a
# known JWT secret, signs a token for it, and stops the server at the end.
# One worker: with several, the generator now and then dies inside CPython 3.11's AST code
# ("AST constructor recursion depth mismatch"), which says nothing about the API.
# SCHEMATHESIS_MAX_EXAMPLES (default 30) bounds the examples per operation and phase;
# SCHEMATHESIS_SEED (default 1) makes the run reproducible; SCHEMATHESIS_STORE=dynamo runs the
# server on DynamoDB (under scripts/with-moto.sh) instead of the embedded store.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p local --features aws --bin local   # DynamoDB when SCHEMATHESIS_STORE=dynamo
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp -t local-server.XXXXXX.log)
export JWT_SECRET=schemathesis-secret-0123456789abcdef PORT="$port" LOG_FORMAT=text RUST_LOG=warn
if [ "${SCHEMATHESIS_STORE:-memory}" = dynamo ]; then
  # Against DynamoDB (run under scripts/with-moto.sh): a fresh table created at start. A process
  # with TABLE_NAME runs as deployed: the sandbox gateway is turned on explicitly, with its key.
  export TABLE_NAME="schemathesis-$port" CREATE_TABLE=1
  export SANDBOX_ENABLED=true SANDBOX_SECRET=schemathesis-sandbox-0123456789abcdef
  export TICKET_SIGNING_KEY=schemathesis-ticket-key-0123456789abcdef
else
  unset TABLE_NAME
fi
target/debug/local >"$log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true; rm -f "$log"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('$base/v1/health')" 2>/dev/null; then
    break
  fi
  if ! kill -0 $server_pid 2>/dev/null; then
    echo "local server failed to start:" >&2; cat "$log" >&2; exit 1
  fi
  sleep 0.1
done
token=$(target/debug/local token 21 admin | tail -n 1)
echo "schemathesis against $base"
status=0
.venv/bin/schemathesis run openapi/openapi.json \
  --url "$base" \
  -H "Authorization: Bearer $token" \
  --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-30}" \
  --workers 1 \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --generation-database none \
  --no-color \
  "$@" || status=$?
if [ $status -ne 0 ] && grep -q panicked "$log"; then
  echo "--- server log ---" >&2; grep -B2 -A8 panicked "$log" >&2
fi
exit $status
