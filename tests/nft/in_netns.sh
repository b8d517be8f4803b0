#!/usr/bin/env bash
# Runs a test binary inside a fresh network namespace that exists only as long as the process does, so the
# test can program nftables without touching the root namespace and cannot leave anything behind.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "skipped: needs root for network namespaces"; exit 77; }
exec unshare --net "$@"
