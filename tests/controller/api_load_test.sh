#!/usr/bin/env bash
# The controller under load from the Kubernetes API: nftpol-test-apiserver holds a synthetic cluster (PODS pods
# over 20 nodes and 100 namespaces, POLICIES policies); the controller for node-0 lists it and enforces it, then
# follows RATE pod changes a second for SECONDS (deletions, recreations with a new address, relabellings). It
# must keep up: every change committed, the lag from the server's write to the commit that enforces it (median,
# p99, max) under a bound, and its memory bounded (the resident size at the end of the churn within 1.5x, plus
# 32 MiB, of the one after the first sync). The kernel must then hold exactly what `nftpol render` makes of the
# server's objects. In a network namespace of its own.
#
#   api_load_test.sh NFTPOL APISERVER [PODS POLICIES RATE SECONDS [MAX-P99-MS]]
set -uo pipefail
nftpol=$1
apiserver=$2
pods=${3:-10000} policies=${4:-2000} rate=${5:-1000} seconds=${6:-30} bound=${7:-2000}
namespaces=100 nodes=20
source "$(dirname "$0")/../lib/netns.sh"
nftpol_reexec_in_netns "$@"
nftpol_pod_test "nftpol-l$$"
ip link set lo up
source "$(dirname "$0")/../lib/apiserver.sh"
nftpol_apiserver "$apiserver"

start=$(date +%s%N)
check "populate: $pods pods, $policies policies, $namespaces namespaces, $nodes nodes" \
  [ "$(api populate $namespaces "$pods" "$policies" $nodes)" = ok ]
echo "populated in $((($(date +%s%N) - start) / 1000000)) ms"

start=$(date +%s%N)
"$nftpol" controller --kubeconfig "$dir/kubeconfig" --node node-0 --listen 127.0.0.1:9436 --cni-socket "$dir/cni.sock" --no-node-routes \
  2> "$dir/controller.log" &
controller=$!
pids+=($controller)
for _ in $(seq 600); do curl -sf 127.0.0.1:9436/readyz > /dev/null && break; sleep 0.1; done
check "ready: listed and enforced in $((($(date +%s%N) - start) / 1000000)) ms" curl -sf 127.0.0.1:9436/readyz -o /dev/null
rss() { awk '/^VmRSS/ {print int($2 / 1024)}' "/proc/$controller/status"; }
synced=$(rss)
echo "resident after the first sync: $synced MiB"

# Resident size every second of the churn.
( while kill -0 "$controller" 2> /dev/null; do rss; sleep 1; done ) > "$dir/rss" 2> /dev/null &
sampler=$!
pids+=($sampler)
result=$(api churn "$rate" "$seconds" $namespaces "$pods" $nodes 9436)
kill "$sampler" 2> /dev/null
echo "churn: $result"
read -r total committed median p99 max <<< "$(awk '{print $2, $4, $7, $9, $11}' <<< "$result")"
check "every change committed ($committed of $total)" [ -n "$total" -a "$committed" = "$total" ]
at_most() { [ -n "$1" ] && [ "$1" -ge 0 ] && [ "$1" -le "$2" ]; } 2> /dev/null
check "lag from write to commit: median ${median} ms, p99 ${p99} ms (bound ${bound}), max ${max} ms" \
  at_most "$p99" "$bound"
peak=$(sort -n "$dir/rss" | tail -1) end=$(rss)
echo "resident: $synced MiB after the first sync, $end MiB at the end, $peak MiB at most"
check "memory bounded: $end MiB at the end <= 1.5 x $synced + 32 MiB" at_most "$end" $((synced * 3 / 2 + 32))
echo "controller: $(grep -c 'event=reconciled' "$dir/controller.log") reconciles," \
  "$(curl -sf 127.0.0.1:9436/metrics | awk '/^nftpol_reconcile_duration_seconds_(sum|count)/ {v[$1] = $2}
      END {printf "%.1f ms each on average", 1000 * v["nftpol_reconcile_duration_seconds_sum"] / v["nftpol_reconcile_duration_seconds_count"]}')"

in_step() {
  local _
  for _ in $(seq 50); do
    rm -f "$dir/dump.json"
    [ "$(api dump "$dir/dump.json")" = ok ] || return 1
    cmp -s <("$nftpol" render --cluster "$dir/dump.json" --node node-0 2> /dev/null | nftpol_blocks) \
      <(nft list table inet nftpol 2> /dev/null | nftpol_blocks) && return 0
    sleep 0.2
  done
  return 1
}
check "the kernel holds what the server's objects render to" in_step
check "no error logged" bash -c "! grep -q 'level=error' '$dir/controller.log'"

echo "api load: $passed passed, $failed failed"
[ "$failed" = 0 ]
