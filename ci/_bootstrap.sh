# Sourced by the ci/ scripts: makes sure hatch (and uv, its installer) are
# available in a private virtual environment under .cache/, with nothing
# needed on the machine but Python >= 3.11.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOOLS="$ROOT/.cache/tools"
HATCH_VERSION="1.18.2"
PYTHON="${PYTHON:-python3}"
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "Python >= 3.11 is required (found: $("$PYTHON" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x "$TOOLS/bin/hatch" ] || ! "$TOOLS/bin/hatch" --version 2>/dev/null | grep -q "$HATCH_VERSION"; then
  echo "Bootstrapping hatch $HATCH_VERSION into .cache/tools" >&2
  "$PYTHON" -m venv "$TOOLS"
  "$TOOLS/bin/pip" install --quiet --disable-pip-version-check "hatch==$HATCH_VERSION" "uv>=0.5"
fi
export PATH="$TOOLS/bin:$PATH"
# Keep hatch's environments and caches inside the checkout: a fresh clone is
# self-contained and nothing leaks between clones.
export HATCH_DATA_DIR="$ROOT/.cache/hatch"
export HATCH_CACHE_DIR="$ROOT/.cache/hatch-cache"
export UV_CACHE_DIR="${UV_CACHE_DIR:-$HOME/.cache/uv}"
export HATCH_ENV_TYPE_VIRTUAL_UV_PATH="$TOOLS/bin/uv"
