#!/usr/bin/env bash
# The controller following the Kubernetes API under load, as issue 6 sizes it: 10k pods and 2k policies listed,
# then 1k pod changes a second for 30 s. Prints the time to the first sync, the lag from each change's write at
# the API server to the commit that enforces it (median, p99, max over the 30k changes), the reconciles it took
# and the resident memory. tests/controller/api_load_test.sh holds the bounds; this runs it at full size.
#   bench/api_load.sh [BUILD-DIR [PODS POLICIES RATE SECONDS]]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
exec tests/controller/api_load_test.sh "$build/cli/nftpol" "$build/tests/nftpol-test-apiserver" \
  "${2:-10000}" "${3:-2000}" "${4:-1000}" "${5:-30}"
