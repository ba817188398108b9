#!/usr/bin/env bash
# Configures and builds Keystore into build/ (incremental; ccache keeps rebuilds cheap).
set -euo pipefail
cd "$(dirname "$0")/.."
tests=OFF
if [[ "${1:-}" == "--test" ]]; then
  tests=ON
fi
# The dashboard is compiled into the binary from web/dist, so build it first.
bash scripts/build-dashboard.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEYSTORE_BUILD_TESTS="$tests" >/dev/null
# Beast-heavy translation units need about 1 GB each; two jobs fit every supported machine.
ninja -C build -j "${KEYSTORE_BUILD_JOBS:-2}"
