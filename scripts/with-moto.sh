#!/usr/bin/env bash
# Runs a command with a moto server (DynamoDB, SQS, SES) on a free 127.0.0.1 port, exporting
# AWS_ENDPOINT_URL and dummy credentials; the server is stopped when the command ends.
set -euo pipefail
cd "$(dirname "$0")/.."
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp -t moto.XXXXXX.log)
.venv/bin/python scripts/moto_server.py 127.0.0.1 "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill $moto_pid 2>/dev/null || true; wait $moto_pid 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
    break
  fi
  if ! kill -0 $moto_pid 2>/dev/null; then
    echo "moto server failed to start:" >&2; cat "$log" >&2; exit 1
  fi
  sleep 0.1
done
export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
export REQUIRE_MOTO=1
echo "moto server on $AWS_ENDPOINT_URL"
"$@"
