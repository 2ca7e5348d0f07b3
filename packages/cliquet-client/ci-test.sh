#!/usr/bin/env bash
# Runs cliquet-client's tests: unit (memory store, no server), integration
# (against ci/serve's example app, started by the tests on free ports) and
# browser (Debian's Chromium driven by playwright-core, the demo page of
# docs/client-demo with IndexedDB). Installs what is missing: the npm
# packages from package-lock.json, and Chromium through apt.
# Exits non-zero when any test fails. Extra arguments go to `node --test`.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v node >/dev/null || ! node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)'; then
  echo "cliquet-client: Node.js >= 20 is needed (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

npm ci --no-audit --no-fund --loglevel=error

CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"
export CHROMIUM_PATH
if [ ! -x "$CHROMIUM_PATH" ]; then
  echo "cliquet-client: installing Chromium (Debian package) for the browser tests"
  SUDO=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq chromium >/dev/null
fi

# One run, so node's test runner prints one summary for all three suites.
# Integration and browser files each start their own app: one file at a time.
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
node --test --test-concurrency=1 --test-reporter=spec "$@" \
  test/unit/*.test.js test/integration/*.test.js test/browser/*.test.js 2>&1 | tee "$log" || status=$?
passed="$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$log" | tail -1)"
failed="$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$log" | tail -1)"
echo "cliquet-client: ${passed:-0} passed, ${failed:-0} failed"
if [ "$status" = 0 ] && { [ -z "$passed" ] || [ "$passed" = 0 ]; }; then
  echo "cliquet-client: no test ran" >&2
  status=1
fi
exit "$status"
