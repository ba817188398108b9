#!/usr/bin/env bash
# Installs build and test dependencies, builds with tests, and runs every test suite:
# GoogleTest unit tests, then the Node.js integration and end-to-end suites that start the
# real binary against mock provider upstreams.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
bash scripts/build.sh --test
npm ci --prefix test --no-audit --no-fund --loglevel=error
ctest --test-dir build --output-on-failure -j 2 --timeout 900
