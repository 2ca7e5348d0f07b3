#!/usr/bin/env bash
# Runs cliquet-admin's JavaScript checks: the committed build in
# src/cliquet_admin/static/ must be what `vite build` makes of web/ (byte for
# byte), and the console's end-to-end tests in Debian's Chromium (driven by
# playwright-core) against the example app started as ./ci/serve starts it.
# Installs what is missing: the npm packages from package-lock.json, and
# Chromium through apt. CLIQUET_ADMIN_SCREENSHOTS=1 refreshes the
# documentation's screenshots (docs/admin/). Extra arguments go to `node --test`.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null || ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
  echo "cliquet-admin: Node.js >= 20 is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

npm ci --no-audit --no-fund --loglevel=error

# The committed build is reproducible from the sources.
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
CLIQUET_ADMIN_OUT="$out" npx vite build --logLevel error
if ! diff -r "$out" src/cliquet_admin/static >/dev/null; then
  echo "cliquet-admin: src/cliquet_admin/static/ is not what 'npm run build' makes of web/:" >&2
  diff -r "$out" src/cliquet_admin/static | head -20 >&2 || true
  echo "cliquet-admin: run 'npm run build' in packages/cliquet-admin and commit the result" >&2
  exit 1
fi
echo "cliquet-admin: the committed build matches a fresh one"

CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
export CHROMIUM_PATH
if [ ! -x "$CHROMIUM_PATH" ]; then
  echo "cliquet-admin: installing Chromium (Debian package) for the browser tests"
  SUDO=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null
fi

log="$(mktemp)"
trap 'rm -rf "$out" "$log"' EXIT
status=0
node --test --test-concurrency=1 --test-reporter=spec "$@" test/*.test.js 2>&1 | tee "$log" || status=$?
passed="$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | tail -1)"
failed="$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$log" | tail -1)"
echo "cliquet-admin: ${passed:-0} passed, ${failed:-0} failed"
if [ "$status" = 0 ] && { [ -z "$passed" ] || [ "$passed" = 0 ]; }; then
  echo "cliquet-admin: no test ran" >&2
  status=1
fi
exit "$status"
