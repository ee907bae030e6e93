#!/usr/bin/env bash
# `make build`: every Lambda function (each package under functions/ with a binary, except the
# local server) built for arm64 with cargo-lambda, then zipped; prints each zip's size.
# cargo-lambda (and the zig linker it brings) is installed from PyPI into the project venv
# ($VENV, default .venv) only here, so `make test` does not pay for it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VENV:-.venv}
req=scripts/requirements-build.txt
stamp="$venv/.installed-build"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! { [ -f "$stamp" ] && cmp -s "$req" "$stamp"; }; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  cp "$req" "$stamp"
fi
case "$venv" in
  /*) export PATH="$venv/bin:$PATH" ;;
  *) export PATH="$PWD/$venv/bin:$PATH" ;;
esac
if command -v rustup >/dev/null; then
  rustup target add aarch64-unknown-linux-gnu >/dev/null
fi
bins=()
for dir in functions/*/; do
  name=$(basename "$dir")
  if [ "$name" != local ] && [ -f "$dir/src/main.rs" ]; then bins+=("$name"); fi
done
# By package, not by binary: with `--bin` alone cargo resolves the features of every workspace
# member, and the local server's (`shared/local`: text logs, CORS in the process) and the tests'
# would be built into every function.
args=()
for b in "${bins[@]}"; do args+=(-p "$b"); done
out=${CARGO_TARGET_DIR:-target}/lambda
cargo lambda build --release --arm64 "${args[@]}"
echo
mkdir -p "$out/zip"
printf '%-12s %12s %12s\n' function bootstrap zipped
for b in "${bins[@]}"; do
  dir="$out/$b"
  zip="$out/zip/$b.zip"
  file "$dir/bootstrap" | grep -q 'ARM aarch64' || { echo "$dir/bootstrap is not an arm64 binary" >&2; exit 1; }
  rm -f "$zip"
  (cd "$dir" && zip -q -9 "../zip/$b.zip" bootstrap)
  printf '%-12s %12s %12s\n' "$b" "$(stat -c %s "$dir/bootstrap")" "$(stat -c %s "$zip")"
done
# The template `make deploy` uses: each function's code is its zip.
OUT="$out" python3 - <<'PY'
import os, re
src = open("template.yaml", encoding="utf-8").read()
out = re.sub(
    r"(BuildProperties: \{ Binary: (\w+) \}\n(?:.*\n)*?\s+)CodeUri: \.\n",
    lambda m: f"{m.group(1)}CodeUri: zip/{m.group(2)}.zip\n",
    src,
)
open(os.path.join(os.environ["OUT"], "template.yaml"), "w", encoding="utf-8").write(out)
PY
echo "wrote $out/template.yaml (code from $out/zip/*.zip)"
