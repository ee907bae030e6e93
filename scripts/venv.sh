#!/usr/bin/env bash
# Creates the project's Python venv (.venv) with the local AWS peer (moto server, which also
# brings cfn-lint). Idempotent: re-runs only when requirements change.
set -euo pipefail
cd "$(dirname "$0")/.."
req=scripts/requirements.txt
stamp=.venv/.installed
if [ -f "$stamp" ] && cmp -s "$req" "$stamp"; then
  exit 0
fi
python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r "$req"
cp "$req" "$stamp"
