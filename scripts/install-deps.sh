#!/usr/bin/env bash
# Installs what building Keystore needs on Debian 12; with --test, also what its tests need,
# and with --bench, what bench/proxy/run.sh needs.
# Run as root. Installing an already present package is a quick no-op.
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libssl-dev libsqlite3-dev libpq-dev libhiredis-dev libspdlog-dev libcli11-dev libtomlplusplus-dev libsodium-dev
)
test_packages=(
  libgtest-dev libgmock-dev libbenchmark-dev openssl sqlite3
  postgresql redis-server chromium
)
bench_packages=(nginx wrk jq curl iproute2)

packages=("${build_packages[@]}")
# The dashboard in web/ is built with Node.js 18 or later and npm.
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi
if [[ "${1:-}" == "--test" ]]; then
  packages+=("${test_packages[@]}")
fi
if [[ "${1:-}" == "--bench" ]]; then
  packages+=("${bench_packages[@]}")
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if ((${#missing[@]} > 0)); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
