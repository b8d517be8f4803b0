#!/usr/bin/env bash
# nftpol-bridge as a container runtime calls it: CNI_* variables, the network config on stdin, host-local for
# IPAM (its reservations in a directory of this test). The node is a network namespace of its own (`unshare
# --net`); pods are namespaces named nftpol-c<pid>-*. Probes are bounded; everything is removed on exit.
set -uo pipefail
plugin=$1
probe=$2
source "$(dirname "$0")/../lib/netns.sh"
nftpol_reexec_in_netns "$@"
tag=nftpol-c$$
dir=$(mktemp -d /tmp/nftpol-cni.XXXXXX)
pids=()
failures=0
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  for ns in $(ip netns list | awk -v t="$tag-" 'index($1, t) == 1 {print $1}'); do ip netns del "$ns"; done
  rm -rf "$dir"
}
trap cleanup EXIT
contains() { grep -q -- "$2" <<< "$1"; }  # contains TEXT PATTERN
check() {  # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "FAILED: $what"; failures=$((failures + 1)); fi
}
ip link set lo up
[ -d /usr/lib/cni ] || { echo "skipped: containernetworking-plugins (host-local) is not installed"; exit 77; }
conf() {  # conf SUBNET [VERSION]
  cat <<JSON
{"cniVersion": "${2:-1.1.0}", "name": "pods", "type": "nftpol-bridge", "bridge": "$tag", "isDefaultGateway": true,
 "hairpinMode": true, "mtu": 1400,
 "ipam": {"type": "host-local", "dataDir": "$dir/ipam", "ranges": [[{"subnet": "$1"}]], "routes": [{"dst": "10.96.0.0/12"}]}}
JSON
}
cni() {  # cni COMMAND CONTAINER NETNS-NAME CONFIG: prints the plugin's stdout, returns its exit code
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=${3:+/var/run/netns/$3} CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
    "$plugin" <<< "$4"
}

# Three pods: distinct addresses, routes, each other and the gateway reachable.
subnet=10.244.5.0/24
for i in 1 2 3; do
  ip netns add "$tag-$i"
  cni ADD "pod$i" "$tag-$i" "$(conf $subnet)" > "$dir/add$i.json"
  check "ADD pod$i exits 0" test $? = 0
done
addresses=$(for i in 1 2 3; do grep -o '"address": "[^"]*"' "$dir/add$i.json"; done | sort -u | wc -l)
check "three distinct addresses" test "$addresses" = 3
check "the result names the sandbox and the gateway" grep -q "\"sandbox\": \"/var/run/netns/$tag-1\".*\"gateway\": \"10.244.5.1\"" "$dir/add1.json"
check "default route via the gateway in the pod" sh -c "ip -n $tag-1 route show default | grep -q 'via 10.244.5.1 dev eth0'"
check "the IPAM route too" sh -c "ip -n $tag-1 route show 10.96.0.0/12 | grep -q 'via 10.244.5.1'"
check "the gateway address on the bridge" sh -c "ip addr show $tag | grep -q '10.244.5.1/24'"
check "mtu 1400 in the pod" sh -c "ip -n $tag-1 link show eth0 | grep -q 'mtu 1400'"
check "bridged traffic meets nftables" test "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables)" = 1
check "forwarding on" test "$(cat /proc/sys/net/ipv4/ip_forward)" = 1
ip netns exec "$tag-3" "$probe" serve 7000 & pids+=($!)
"$probe" serve 7001 & pids+=($!)
sleep 0.3
ip3=$(ip -n "$tag-3" -4 -o addr show eth0 | awk '{sub("/.*", "", $4); print $4}')
check "pod1 reaches pod3 ($ip3)" ip netns exec "$tag-1" "$probe" connect tcp "$ip3" 7000 2000
check "pod2 reaches the node through the gateway" ip netns exec "$tag-2" "$probe" connect tcp 10.244.5.1 7001 2000

# CHECK against the ADD result, then against drift.
withPrev() { sed "s|}}\$|}, \"prevResult\": $(tr -d '\n' < "$1")}|" <<< "$(conf $subnet | tr -d '\n')"; }
check "CHECK passes right after ADD" cni CHECK pod1 "$tag-1" "$(withPrev "$dir/add1.json")"
ip -n "$tag-1" route del 10.96.0.0/12
out=$(cni CHECK pod1 "$tag-1" "$(withPrev "$dir/add1.json")")
check "CHECK names a missing route" contains "$out" '"msg": "the route to 10.96.0.0/12 is missing in the pod"'
ip -n "$tag-1" addr flush dev eth0
out=$(cni CHECK pod1 "$tag-1" "$(withPrev "$dir/add1.json")")
check "CHECK names a missing address" contains "$out" '"msg": "10.244.5.[0-9]*/24 is missing on eth0"'
out=$(cni CHECK pod1 "$tag-1" "$(conf $subnet)")
check "CHECK without prevResult: code 7" contains "$out" '"code": 7'
check "STATUS: ready" cni STATUS "" "" "$(conf $subnet)"
out=$(CNI_COMMAND=STATUS CNI_PATH=/nonexistent "$plugin" <<< "$(conf $subnet)")
check "STATUS without the IPAM plugin: code 50" contains "$out" '"code": 50'

# 16 parallel ADDs: distinct addresses, every one wired.
for i in $(seq 16); do ip netns add "$tag-p$i"; done
adds=()
for i in $(seq 16); do cni ADD "par$i" "$tag-p$i" "$(conf 10.244.8.0/24)" > "$dir/par$i.json" & adds+=($!); done
wait "${adds[@]}"  # not the servers
parallel=$(for i in $(seq 16); do ip -n "$tag-p$i" -4 -o addr show eth0 | awk '{print $4}'; done | sort -u | wc -l)
check "16 parallel ADDs: 16 distinct addresses on eth0" test "$parallel" = 16

# DEL: the links go, the address is released; again, and after the namespace is gone, it still succeeds.
cni DEL pod2 "$tag-2" "$(conf $subnet)" >/dev/null
check "DEL pod2 exits 0" test $? = 0
check "pod2's eth0 is gone" sh -c "! ip -n $tag-2 link show eth0 2>/dev/null"
check "pod1's address is reserved under its container ID" grep -rq pod1 "$dir/ipam/pods/"
check "pod2's address is released" sh -c "! grep -rq pod2 $dir/ipam/pods/"
check "DEL again succeeds" cni DEL pod2 "$tag-2" "$(conf $subnet)"
ip netns del "$tag-3"
check "DEL after the namespace is gone succeeds" cni DEL pod3 "$tag-3" "$(conf $subnet)"
check "and takes pod3's host end with it" sh -c "! ip link show $(grep -o '"name": "nftp[0-9a-f]*"' "$dir/add3.json" | cut -d'"' -f4) 2>/dev/null"

# 50 ADD/DEL cycles on a /28 (13 addresses) do not exhaust it.
small=10.244.6.0/28
ip netns add "$tag-cycle"
cycles=0
for i in $(seq 50); do
  cni ADD "cycle$i" "$tag-cycle" "$(conf $small)" >/dev/null && cni DEL "cycle$i" "$tag-cycle" "$(conf $small)" >/dev/null &&
    cycles=$((cycles + 1))
done
check "50 ADD/DEL cycles on a /28" test "$cycles" = 50

# Exhausted: the 14th pod on a /28 gets host-local's error, and leaves no veth behind.
for i in $(seq 13); do ip netns add "$tag-x$i"; cni ADD "x$i" "$tag-x$i" "$(conf $small)" >/dev/null; done
links=$(ip -o link show | grep -c ': nftp')
ip netns add "$tag-x14"
out=$(cni ADD x14 "$tag-x14" "$(conf $small)")
code=$?
check "exhausted pool: non-zero exit" test "$code" != 0
check "exhausted pool: error JSON from IPAM ($out)" contains "$out" '"msg": "IPAM host-local: .*no IP addresses available'
check "exhausted pool: no leaked veth" test "$(ip -o link show | grep -c ': nftp')" = "$links"

# A second ADD of the same interface into a pod fails with the kernel's reason and leaves nothing behind.
links=$(ip -o link show | grep -c ': nftp')
out=$(cni ADD again "$tag-1" "$(conf $subnet)")
check "ADD onto an existing eth0 fails" contains "$out" '"msg": "cannot create the pod.s veth pair", "details": ".*File exists"'
check "and rolls back its veth" test "$(ip -o link show | grep -c ': nftp')" = "$links"
check "and its address" sh -c "! grep -rq again $dir/ipam/pods/"

# Bad calls get the spec's codes.
out=$(cni ADD bad "$tag-1" '{"cniVersion": "1.1.0", "name": "pods", "type": "nftpol-bridge", "mtu": "x", "ipam": {"type": "host-local"}}')
check "bad config: code 7" contains "$out" '"code": 7'
out=$(cni ADD bad "$tag-1" '{"cniVersion": "0.2.0", "name": "pods", "type": "nftpol-bridge", "ipam": {"type": "host-local"}}')
check "unknown version: code 1" contains "$out" '"code": 1,'
out=$(cni ADD bad "$tag-1" 'not json')
check "not JSON: code 6" contains "$out" '"code": 6'
out=$(CNI_COMMAND=ADD CNI_PATH=/usr/lib/cni "$plugin" <<< "$(conf $subnet)")
check "missing CNI_CONTAINERID: code 4" contains "$out" '"code": 4'
out=$(CNI_COMMAND=VERSION "$plugin" < /dev/null)
check "VERSION lists 1.0.0 and 1.1.0" contains "$out" '"supportedVersions": \["1.0.0", "1.1.0"\]'
ip netns add "$tag-v10"
out=$(cni ADD v10 "$tag-v10" "$(conf 10.244.7.0/24 1.0.0)" | tr -d '\n')
check "a 1.0.0 config gets a 1.0.0 result" contains "$out" '"cniVersion": "1.0.0", "interfaces"'

echo "cni plugin: $failures failed"
[ "$failures" = 0 ]
