#!/usr/bin/env bash
# Configures and builds Keystore into build/ (incremental; ccache keeps rebuilds cheap).
set -euo pipefail
cd "$(dirname "$0")/.."
tests=OFF
if [[ "${1:-}" == "--test" ]]; then
  tests=ON
fi
# The dashboard is compiled into the binary from web/dist, so build it first. It is rebuilt only
# when a file of web/ is newer than web/dist/index.html.
if [[ "${KEYSTORE_SKIP_DASHBOARD:-0}" != "1" ]]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "npm not found: the binary is built without the dashboard (scripts/install-deps.sh installs nodejs and npm)" >&2
  elif [[ ! -f web/dist/index.html ]] ||
    [[ -n "$(find web -path web/node_modules -prune -o -path web/dist -prune -o -type f -newer web/dist/index.html -print -quit)" ]]; then
    (cd web && npm ci --no-audit --no-fund && npm run build)
  fi
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEYSTORE_BUILD_TESTS="$tests" >/dev/null
# Beast-heavy translation units need about 1 GB each; two jobs fit every supported machine.
ninja -C build -j "${KEYSTORE_BUILD_JOBS:-2}"
