#!/usr/bin/env bash
# The flow log's cost and latency. Cost: TCP throughput and connection rate between two pods on one node with
# the controller enforcing 2,000 policies (10k pods) and the flow log off, on (denied connections, the default)
# and on with allowed connections too; interleaved rounds, medians, and the ratio to off (target: at least
# 0.95). Latency: a denied connection's first packet to its record on /flows?follow, over PROBES connections
# spaced 200 ms apart, for the default flush interval (5 s) and for 1 s: median and p99 (target: p99 under
# 1 s plus the flush interval).
# Runs in a node namespace of its own; pods are netns named nftpol-b<pid>-*; everything is removed on exit.
set -uo pipefail
build=${1:-build}
seconds=${SECONDS_PER_RUN:-1}
rounds=${ROUNDS:-10}
probes=${PROBES:-50}
source "$(dirname "$0")/../tests/lib/netns.sh"
nftpol_reexec_in_netns "$@"
nftpol=$build/cli/nftpol probe=$build/tests/nftpol-probe gen=$build/bench/nftpol-gen
tag=nftpol-b$$
dir=$(mktemp -d /tmp/nftpol-flowlog.XXXXXX)
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
nftpol_listening "$tag-b" tcp 5001 5002 || { echo "the servers do not listen"; exit 1; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p99() { sort -n | awk '{a[NR]=$1} END {i = int(NR * 0.99 + 0.999); if (i < 1) i = 1; print a[i]}'; }
mkdir -p "$dir/m"
"$gen" --pods 10000 --namespaces 1000 --policies 2000 --seed 42 > "$dir/m/cluster.yaml"
cat > "$dir/m/bench.yaml" <<'YAML'
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
- apiVersion: networking.k8s.io/v1
  kind: NetworkPolicy
  metadata: {name: nothing-into-a, namespace: ns-7}
  spec: {podSelector: {matchLabels: {app: bench}}}
YAML
"$nftpol" can-reach --cluster "$dir/m" ns-7/bench-a ns-7/bench-b --port 5001 >/dev/null || echo "warning: a cannot reach b"
"$nftpol" can-reach --cluster "$dir/m" ns-7/bench-b ns-7/bench-a --port 6000 >/dev/null && echo "warning: b reaches a"
controller=""
start() {  # config, flush seconds: the controller for the config, until its table is in place
  local flags=()
  case $1 in off) flags=(--no-flow-log);; denied) flags=(--flow-log "$dir/flows.jsonl");;
    allowed) flags=(--flow-log "$dir/flows.jsonl" --flow-log-allowed);; esac
  "$nftpol" controller --manifests "$dir/m" --node node-7 --listen 127.0.0.1:9436 --no-cni-socket \
    --no-conntrack-revoke --flow-log-flush "${2:-5}" "${flags[@]}" 2>>"$dir/controller.log" &
  controller=$!
  nftpol_wait_for 60 curl -sf localhost:9436/readyz >/dev/null || { echo "the controller never became ready"; tail "$dir/controller.log"; exit 1; }
}
stop() { nftpol_stop 5 "$controller" >/dev/null; nft delete table inet nftpol 2>/dev/null; }
configs="off denied allowed"
set -- $configs
for round in $(seq "$rounds"); do
  for c in "$@"; do
    start "$c"
    echo "$c tput $(ip netns exec "$tag-a" "$probe" blast 10.244.0.12 5001 "$seconds")" >> "$dir/samples"
    echo "$c rate $(ip netns exec "$tag-a" "$probe" rate 10.244.0.12 5002 "$seconds")" >> "$dir/samples"
    stop
  done
  set -- "${@:2}" "$1"
done
value() { grep "^$1 $2 " "$dir/samples" | awk '{print $3}' | median; }
t0=$(value off tput) r0=$(value off rate)
echo "TCP between two pods on one node, 10k pods and 2,000 policies enforced: medians of $rounds interleaved rounds of ${seconds}s"
printf '%-34s %8s %6s %13s %6s\n' "flow log" "MB/s" ratio "connections/s" ratio
for c in $configs; do
  label=$c
  case $c in off) label="off (--no-flow-log)";; denied) label="on: denied connections (default)";;
    allowed) label="on: allowed too (--flow-log-allowed)";; esac
  awk -v l="$label" -v t="$(value "$c" tput)" -v r="$(value "$c" rate)" -v t0="$t0" -v r0="$r0" \
    'BEGIN {printf "%-34s %8s %6.3f %13s %6.3f\n", l, t, t / t0, r, r / r0}'
done

# Latency: b -> a is denied at a's ingress; each probe goes to a port of its own, so each is a record of its own.
for flush in 5 1; do
  start denied "$flush"
  rm -f "$dir/arrivals" "$dir/sent"
  curl -sfN 'localhost:9436/flows?follow=true&verdict=denied' | while IFS= read -r line; do
    echo "$(date +%s%N) $(jq -r .destination.port <<< "$line")" >> "$dir/arrivals"
  done &
  follower=$!
  sleep 0.5  # the follow is open before the first probe (nothing to poll for: an empty stream says nothing)
  for i in $(seq "$probes"); do
    echo "$(date +%s%N) $((6000 + i))" >> "$dir/sent"
    ip netns exec "$tag-b" "$probe" connect tcp 10.244.0.11 $((6000 + i)) 100 >/dev/null
    sleep 0.1
  done
  arrived() { [ "$(awk '$2 > 6000' "$dir/arrivals" 2>/dev/null | wc -l)" -ge "$probes" ]; }
  nftpol_wait_for $((flush + 5)) arrived
  kill "$follower" 2>/dev/null; pkill -P "$follower" 2>/dev/null
  join -1 2 -2 2 <(sort -k2 "$dir/sent") <(sort -k2 "$dir/arrivals" | awk '!seen[$2]++') |
    awk '{print ($3 - $2) / 1e6}' > "$dir/latency-$flush"
  stop
  echo "denied packet to its record on /flows?follow, flush every ${flush} s: median $(median < "$dir/latency-$flush") ms, p99 $(p99 < "$dir/latency-$flush") ms over $(wc -l < "$dir/latency-$flush") of $probes connections"
done
