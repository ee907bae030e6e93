#!/usr/bin/env bash
# Headless-browser check of the zoo-tickets email and the API docs page: starts the debug build of the local server
# (embedded store, sandbox gateway) on a free 127.0.0.1 port, pays a zoo order on the sandbox page
# in Debian's Chromium (installed here with apt-get if missing) and checks that /dev/outbox/{id}
# shows the three QR images (scripts/browser-check.py). Screenshot:
# target/screenshots/email-zoo-tickets.png. Needs the venv (scripts/venv.sh, with playwright).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p local --bin local
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp -t local-server.XXXXXX.log)
export JWT_SECRET=browser-check-secret-0123456789abcdef PORT="$port" LOG_FORMAT=text RUST_LOG=warn
unset TABLE_NAME QUEUE_URL
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
token=$(target/debug/local token 21 | tail -n 1)
status=0
.venv/bin/python scripts/browser-check.py "$base" "$token" || status=$?
if [ $status -ne 0 ]; then
  echo "--- server log ---" >&2; cat "$log" >&2
fi
exit $status
