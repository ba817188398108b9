#!/usr/bin/env bash
# Builds the production binary, build-release/keystore: optimized across translation units
# (LTO) and with a profile of a training run (PGO). It takes two full builds and a training run
# of about half a minute, so development and the test suite use scripts/build.sh instead.
#
#   1. build with instrumentation, which counts how often each branch and call runs;
#   2. run scripts/pgo-train.mjs against that binary (Node.js mock upstreams on loopback);
#   3. build again with the profile and LTO, and run the training once more as a check.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

build_dir=build-release
profile_dir=$PWD/$build_dir/pgo-profile
jobs=${KEYSTORE_BUILD_JOBS:-2}
# Every stage writes build-release/keystore, so a failed stage removes it rather than leave an
# instrumented or unchecked binary where the benchmark looks.
trap 'rm -f "$build_dir/keystore"' ERR

# The dashboard is compiled into the binary from web/dist, so build it first.
bash scripts/build-dashboard.sh

configure() {
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DKEYSTORE_BUILD_TESTS=OFF \
    -DKEYSTORE_PGO_DIR="$profile_dir" "$@" >/dev/null
}

echo "build-release: stage 1 of 3, instrumented build" >&2
rm -rf "$profile_dir"
configure -DKEYSTORE_PGO=generate -DKEYSTORE_LTO=OFF
ninja -C "$build_dir" -j "$jobs" keystore

echo "build-release: stage 2 of 3, training run" >&2
KEYSTORE_BIN=$PWD/$build_dir/keystore node scripts/pgo-train.mjs --requests 20000

echo "build-release: stage 3 of 3, optimized build with the profile and LTO" >&2
configure -DKEYSTORE_PGO=use -DKEYSTORE_LTO=ON
# The profile differs in every run, so ccache could never reuse these objects.
CCACHE_DISABLE=1 ninja -C "$build_dir" -j "$jobs" keystore
KEYSTORE_BIN=$PWD/$build_dir/keystore node scripts/pgo-train.mjs --requests 2000
echo "build-release: $build_dir/keystore is ready" >&2
