#!/usr/bin/env bash
# Data path: TCP throughput and connection rate between two pods on one node (network namespaces on a bridge),
# with no table, and with the table the controller programs for 10 and for 2,000 policies (and for 2,000 with 500
# ClusterNetworkPolicies). The destination pod is
# isolated by the policies and reached through the verdict maps and its chain, as in production. Two references
# show what is connection tracking's and what is the policy's: conntrack alone, and the empty NAT chains of a node
# with service NAT. The configurations are interleaved round by round, and each figure is the median over the
# rounds, of the wall-clock rates and of the CPU time each connection cost the machine.
# Runs in a node namespace of its own; pods are netns named nftpol-b<pid>-*; everything is removed on exit.
set -uo pipefail
build=${1:-build}
seconds=${SECONDS_PER_RUN:-1}
rounds=${ROUNDS:-12}
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
cluster() {  # NAME POLICIES [CLUSTER-POLICIES]: the generated cluster on node-7, plus the two pods and the policy
  local name=$1 m=$dir/m$1    # that lets a reach b
  mkdir -p "$m"
  "$gen" --pods 10000 --namespaces 1000 --policies "$2" --cluster-policies "${3:-0}" --seed 42 > "$m/cluster.yaml"
  cat > "$m/bench.yaml" <<YAML
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
  "$nftpol" controller --manifests "$m" --node node-7 --once --no-conntrack-revoke 2>/dev/null >/dev/null
  for port in 5001 5002; do
    "$nftpol" can-reach --cluster "$m" ns-7/bench-a ns-7/bench-b --port $port >/dev/null 2>&1 || echo "warning: a cannot reach b on $port"
  done
  nft list table inet nftpol > "$dir/$name.nft"
  echo "rules in the $name table: $(grep -c ' accept\| return\| drop' "$dir/$name.nft")" >&2
  nft delete table inet nftpol
}
# Connection tracking and nothing else: the policy table's first rule, which lets replies through.
cat > "$dir/conntrack-only.nft" <<'NFT'
table inet nftpol {
  chain forward { type filter hook forward priority 0; policy accept; ct state established,related accept; }
}
NFT
# What every node with service NAT (kube-proxy in any mode, or nftpol's own) has before any policy: one
# ClusterIP's DNAT rule (which the benchmark never uses) turns on connection tracking of every packet in the
# namespace, pod to pod included. (Empty NAT chains alone do not: the NAT expressions do.)
cat > "$dir/service-nat-only.nft" <<'NFT'
table inet nftpol {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr 10.96.0.10 tcp dport 80 dnat ip to 10.244.0.12:5002
  }
}
NFT
cluster policies-10 10
cluster policies-2000 2000
# And 500 ClusterNetworkPolicies of both tiers beside them: both pods' tier chains on the way.
cluster policies-2000-cnp-500 2000 500
configs="none conntrack-only service-nat-only policies-10 policies-2000 policies-2000-cnp-500"
# CPU time the whole machine spent (user, system, interrupts; not idle, not stolen by the hypervisor), in clock
# ticks: on a shared VM, the work a connection costs varies far less than the wall time it takes.
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }
hz=$(getconf CLK_TCK)
# Rounds interleave the configurations, so that the machine's drift (a shared VM) falls on all of them alike,
# and each round starts with the next one, so that none always follows another.
set -- $configs
for round in $(seq "$rounds"); do
  for c in "$@"; do
    [ "$c" = none ] || nft -f "$dir/$c.nft"
    echo "$c tput $(ip netns exec "$tag-a" "$probe" blast 10.244.0.12 5001 "$seconds")" >> "$dir/samples"
    b0=$(busy)
    r=$(ip netns exec "$tag-a" "$probe" rate 10.244.0.12 5002 "$seconds")
    b1=$(busy)
    echo "$c rate $r" >> "$dir/samples"
    echo "$c cpu $(awk -v b="$((b1 - b0))" -v hz="$hz" -v r="$r" -v s="$seconds" \
      'BEGIN {printf "%.1f", b / hz * 1e6 / (r * s)}')" >> "$dir/samples"
    [ "$c" = none ] || nft delete table inet nftpol
  done
  set -- "${@:2}" "$1"
done
value() { grep "^$1 $2 " "$dir/samples" | awk '{print $3}' | median; }
t0=$(value none tput) r0=$(value none rate) tc=$(value conntrack-only tput) rc=$(value conntrack-only rate)
c0=$(value none cpu) cc=$(value conntrack-only cpu)
echo "TCP between two pods on one node: medians of $rounds interleaved rounds of ${seconds}s per measurement"
echo "(ratios to no table, and to conntrack only; CPU: microseconds of the machine's CPU per connection):"
printf '%-21s %8s %6s %6s %13s %6s %6s %6s %6s %6s\n' table "MB/s" ratio "to ct" "connections/s" ratio "to ct" \
  "CPU" ratio "to ct"
for c in $configs; do
  awk -v l="$c" -v t="$(value "$c" tput)" -v r="$(value "$c" rate)" -v u="$(value "$c" cpu)" -v t0="$t0" \
    -v r0="$r0" -v tc="$tc" -v rc="$rc" -v c0="$c0" -v cc="$cc" \
    'BEGIN {printf "%-21s %8s %6.3f %6.3f %13s %6.3f %6.3f %6s %6.3f %6.3f\n", l, t, t / t0, t / tc, r, r / r0,
            r / rc, u, u / c0, u / cc}'
done
