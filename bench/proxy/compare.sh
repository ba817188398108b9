#!/usr/bin/env bash
# Compares two keystore builds with the proxy benchmark. It runs bench/proxy/run.sh with each
# binary in turn, ROUNDS times. Each run prints one line: Keystore's and nginx's requests/s and
# CPU per request, their throughput ratio, and Keystore's added p99 at the fixed rate.
#
# Run-to-run noise on a shared 2-core machine is larger than most single changes, so the builds
# alternate: a slow stretch of the machine then falls on both.
#
# Usage: bash bench/proxy/compare.sh BASELINE_BIN CANDIDATE_BIN [ROUNDS]
# Environment: OUT_DIR (default: a new temporary directory) keeps each run's report and log;
# everything else is passed on to run.sh (DURATION, SATURATION_ROUNDS, ...).

set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if [[ $# -lt 2 ]]; then
  printf 'usage: %s BASELINE_BIN CANDIDATE_BIN [ROUNDS]\n' "$0" >&2
  exit 2
fi
baseline=$1
candidate=$2
rounds=${3:-2}
out_dir=${OUT_DIR:-$(mktemp -d -t keystore-compare-XXXXXX)}
mkdir -p "$out_dir"

# Prints the named column (1-based, after the leading "|") of the table row that starts with
# "| <label>" in the report.
column() {
  local report=$1 label=$2 index=$3
  grep "^| $label" "$report" | head -1 | awk -F'|' -v i="$((index + 1))" '{gsub(/ /, "", $i); print $i}'
}

printf 'reports in %s\n' "$out_dir"
for round in $(seq "$rounds"); do
  for build in baseline candidate; do
    binary=$baseline
    [[ $build == candidate ]] && binary=$candidate
    report="$out_dir/$build-$round.md"
    if ! KEYSTORE_BIN=$binary OUT=$report bash "$script_dir/run.sh" >"$out_dir/$build-$round.log" 2>&1; then
      printf '%s round %s: run.sh failed, see %s\n' "$build" "$round" "$out_dir/$build-$round.log" >&2
      exit 1
    fi
    ratio=$(grep '^Keystore / nginx: throughput' "$report" | sed 's/.*throughput \([0-9.]*x\).*/\1/')
    added_p99=$(grep '^Keystore added p99' "$report" | sed 's/.*: \([0-9.]*\) ms.*/\1/')
    printf '%-9s round %s: keystore %s req/s %s us/req, nginx %s req/s %s us/req, ratio %s, added p99 %s ms\n' \
      "$build" "$round" \
      "$(column "$report" Keystore 2)" "$(column "$report" Keystore 5)" \
      "$(column "$report" nginx 2)" "$(column "$report" nginx 5)" \
      "$ratio" "$added_p99"
  done
done
