#!/usr/bin/env bash
# Builds the web dashboard (web/ into web/dist), which the binary embeds, when a file of web/ is
# newer than web/dist/index.html. Without npm the binary builds without the dashboard.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${KEYSTORE_SKIP_DASHBOARD:-0}" == "1" ]]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm not found: the binary is built without the dashboard (scripts/install-deps.sh installs nodejs and npm)" >&2
elif [[ ! -f web/dist/index.html ]] ||
  [[ -n "$(find web -path web/node_modules -prune -o -path web/dist -prune -o -type f -newer web/dist/index.html -print -quit)" ]]; then
  (cd web && npm ci --no-audit --no-fund && npm run build)
fi
