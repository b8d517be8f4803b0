#!/usr/bin/env bash
# Data path: TCP throughput and connection rate between two pods on one node (network namespaces on a bridge),
# with no table, and with the table the controller programs for 10 and for 2,000 policies. The destination pod is
# isolated by the policies and reached through the verdict maps and its chain, as in production. Medians of 3.
# Runs in a node namespace of its own; pods are netns named nftpol-b<pid>-*; everything is removed on exit.
set -uo pipefail
build=${1:-build}
seconds=${SECONDS_PER_RUN:-3}
source "$(dirname "$0")/../tests/lib/netns.sh"
nftpol_reexec_in_netns "$@"
nftpol=$build/cli/nftpol probe=$build/tests/nftpol-probe gen=$build/bench/nftpol-gen
tag=nftpol-b$$
dir=$(mktemp -d /tmp/nftpol-datapath.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null
  ip netns del "$tag-a" 2>/dev/null; ip netns del "$tag-b" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
ip link set lo up
ip link add "$tag" type bridge && ip link set "$tag" up
echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables
for p in "a 11" "b 12"; do
  set -- $p
  nftpol_add_pod "$tag-$1" "${tag: -6}$1" "$tag" "10.244.0.$2/24"
done
ip netns exec "$tag-b" "$probe" sink 5001 & pids+=($!)
ip netns exec "$tag-b" "$probe" serve 5002 & pids+=($!)
sleep 0.3
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() {  # label
  local tput rate
  tput=$(for _ in 1 2 3; do ip netns exec "$tag-a" "$probe" blast 10.244.0.12 5001 "$seconds"; done | median)
  rate=$(for _ in 1 2 3; do ip netns exec "$tag-a" "$probe" rate 10.244.0.12 5002 "$seconds"; done | median)
  echo "$1 $tput $rate"
}
cluster() {  # policies: the generated cluster on node-7, plus the two pods and the policy that lets a reach b
  mkdir -p "$dir/m$1"
  "$gen" --pods 10000 --namespaces 1000 --policies "$1" --seed 42 > "$dir/m$1/cluster.yaml"
  cat > "$dir/m$1/bench.yaml" <<YAML
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Pod, metadata: {name: bench-a, namespace: ns-7, labels: {app: bench}}, spec: {nodeName: node-7}, status: {podIP: 10.244.0.11}}
- {apiVersion: v1, kind: Pod, metadata: {name: bench-b, namespace: ns-7, labels: {app: app-1, tier: api}}, spec: {nodeName: node-7}, status: {podIP: 10.244.0.12}}
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: bench-a-to-b, namespace: ns-7}
  spec:
    podSelector: {matchLabels: {app: app-1}}
    ingress:
    - from: [{podSelector: {matchLabels: {app: bench}}}]
YAML
  "$nftpol" controller --manifests "$dir/m$1" --node node-7 --once 2>/dev/null >/dev/null
  "$nftpol" can-reach --cluster "$dir/m$1" ns-7/bench-a ns-7/bench-b --port 5001 >/dev/null || echo "warning: a cannot reach b"
}
conntrack_only() {  # what every node with service NAT or masquerade already has: connection tracking, no policy
  nft -f - <<'NFT'
table inet nftpol-ct {
  chain forward { type filter hook forward priority 0; policy accept; ct state established,related accept; }
}
NFT
}
{
  measure none
  conntrack_only; measure conntrack-only; nft delete table inet nftpol-ct
  cluster 10; measure policies-10
  cluster 2000; echo "rules in the 2k table: $(nft list table inet nftpol | grep -c ' accept\| return\| drop')" >&2
  measure policies-2000
} > "$dir/results"
read -r _ t0 r0 < <(grep '^none' "$dir/results")
read -r _ tc rc < <(grep '^conntrack-only' "$dir/results")
echo "TCP between two pods on one node, medians of 3 runs of ${seconds}s (ratios to no table, and to conntrack only):"
printf '%-15s %10s %7s %7s %14s %7s %7s\n' table "MB/s" ratio "to ct" "connections/s" ratio "to ct"
while read -r label t r; do
  awk -v l="$label" -v t="$t" -v r="$r" -v t0="$t0" -v r0="$r0" -v tc="$tc" -v rc="$rc" \
    'BEGIN {printf "%-15s %10s %7.3f %7.3f %14s %7.3f %7.3f\n", l, t, t / t0, t / tc, r, r / r0, r / rc}'
done < "$dir/results"
