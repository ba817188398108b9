#!/usr/bin/env bash
# Installs what is missing, builds, and runs `keystore serve` on its embedded defaults:
# SQLite and a generated master key in ./keystore-data, proxy on 127.0.0.1:8080, admin API
# on 127.0.0.1:8081. Extra arguments go to `keystore serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh
exec build/keystore serve "$@"
