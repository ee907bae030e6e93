#!/usr/bin/env bash
# Headless-browser check of the zoo-tickets email and the API docs page: starts the debug build of the local server
# (embedded store, sandbox gateway) on a free 127.0.0.1 port, pays a zoo order on the sandbox page
# in Debian's Chromium (installed here with apt-get if missing) and checks that /dev/outbox/{id}
# shows the three QR images (scripts/browser-check.py). Screenshot:
# target/screenshots/email-zoo-tickets.png. Then the demo front end from a second origin (a
# static server on another port serving demo/, allowed by CORS_ORIGINS; the ticket payment
# returns there): two seats bought through the sandbox page, their QR codes, both seats sold on
# the seat map, and two zoo tickets paid on its zoo page (scripts/browser-demo.py; screenshots
# target/screenshots/demo-*.png). Needs the
# venv (scripts/venv.sh, with playwright).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q -p local --bin local
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
demo_port=$(free_port)
base="http://127.0.0.1:$port"
demo="http://127.0.0.1:$demo_port"
log=$(mktemp -t local-server.XXXXXX.log)
export JWT_SECRET=browser-check-secret-0123456789abcdef PORT="$port" LOG_FORMAT=text RUST_LOG=warn
export CORS_ORIGINS="$demo" TICKETS_SUCCESS_URL="$demo/order.html?order={order_id}&api=$base"
export TICKETS_ERROR_URL="$TICKETS_SUCCESS_URL"
unset TABLE_NAME QUEUE_URL RETURN_URL_HOSTS
target/debug/local >"$log" 2>&1 &
server_pid=$!
python3 -m http.server "$demo_port" --bind 127.0.0.1 --directory demo >/dev/null 2>&1 &
demo_pid=$!
trap 'kill $server_pid $demo_pid 2>/dev/null || true; wait $server_pid $demo_pid 2>/dev/null || true; rm -f "$log"' EXIT
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
if [ $status -eq 0 ]; then
  for _ in $(seq 1 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('$demo/index.html')" 2>/dev/null && break
    sleep 0.1
  done
  .venv/bin/python scripts/browser-demo.py "$base" "$demo" "$token" || status=$?
fi
if [ $status -ne 0 ]; then
  echo "--- server log ---" >&2; cat "$log" >&2
fi
exit $status
