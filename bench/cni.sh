#!/usr/bin/env bash
# CNI ADD and DEL latency: nftpol-bridge against the reference bridge plugin, both with host-local, on the same
# machine in the same run. Each call is timed as a runtime pays for it (exec to exit). The two plugins alternate
# call by call, in an order rotated each round, on identical 1.0.0 configs (the reference's newest version), each
# with a bridge and a subnet of its own; the figures are medians (and p90) over the rounds.
#
#   bench/cni.sh [BUILD-DIR]        ROUNDS=100 by default
#
# Runs in a node namespace of its own; pods are netns named nftpol-n<pid>-*; everything is removed on exit.
set -uo pipefail
build=${1:-build}
rounds=${ROUNDS:-100}
source "$(dirname "$0")/../tests/lib/netns.sh"
nftpol_reexec_in_netns "$@"
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || { echo "needs containernetworking-plugins"; exit 1; }
tag=nftpol-n$$
dir=$(mktemp -d /tmp/nftpol-cnibench.XXXXXX)
cleanup() { for p in ours ref; do ip netns del "$tag-$p" 2>/dev/null; done; rm -rf "$dir"; }
trap cleanup EXIT
ip link set lo up
declare -A plugin=([ours]=$(realpath "$build/cni/nftpol-bridge") [ref]=/usr/lib/cni/bridge)
declare -A subnet=([ours]=10.244.20.0/24 [ref]=10.244.21.0/24)
conf() {  # conf WHICH
  cat <<JSON
{"cniVersion": "1.0.0", "name": "bench-$1", "type": "bridge", "bridge": "nb$$-$1", "isGateway": true,
 "isDefaultGateway": true, "hairpinMode": true, "policyHandoff": "best-effort", "controllerSocket": "$dir/none.sock",
 "ipam": {"type": "host-local", "dataDir": "$dir/ipam", "ranges": [[{"subnet": "${subnet[$1]}"}]]}}
JSON
}
call() {  # call WHICH COMMAND CONTAINER: appends the call's microseconds to $dir/WHICH-COMMAND
  local start=$EPOCHREALTIME
  CNI_COMMAND=$2 CNI_CONTAINERID=$3 CNI_NETNS=/var/run/netns/$tag-$1 CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
    "${plugin[$1]}" <<< "$(conf "$1")" > "$dir/out" || { echo "$1 $2 failed: $(cat "$dir/out")"; exit 1; }
  local end=$EPOCHREALTIME
  echo $(( (${end/./} - ${start/./}) )) >> "$dir/$1-$2"
}
for p in ours ref; do
  ip netns add "$tag-$p"
  call "$p" ADD warm && call "$p" DEL warm  # the bridge exists and the binaries are cached before timing
  rm -f "$dir/$p-ADD" "$dir/$p-DEL"
done
for r in $(seq "$rounds"); do
  if (( r % 2 )); then order="ours ref"; else order="ref ours"; fi
  for p in $order; do call "$p" ADD "c$r"; done
  for p in $order; do call "$p" DEL "c$r"; done
done
stat() {  # stat FILE: median and p90 in ms
  sort -n "$1" | awk '{a[NR]=$1} END {printf "%.2f %.2f", a[int((NR+1)/2)]/1000, a[int(NR*0.9+0.5)]/1000}'
}
echo "CNI latency over $rounds rounds, ms (median, p90):"
for c in ADD DEL; do
  read -r om op <<< "$(stat "$dir/ours-$c")"
  read -r rm rp <<< "$(stat "$dir/ref-$c")"
  echo "$c  nftpol-bridge $om (p90 $op)  reference bridge $rm (p90 $rp)  ratio $(awk -v a="$om" -v b="$rm" 'BEGIN {printf "%.2f", a / b}')"
done
