#!/usr/bin/env bash
# nftpol-bridge as a container runtime calls it: CNI_* variables, the network config on stdin, host-local for
# IPAM (its reservations in a directory of this test). The node is a network namespace of its own (`unshare
# --net`); pods are namespaces named nftpol-c<pid>-*. Probes are bounded; everything is removed on exit.
#
#   plugin_test.sh PLUGIN PROBE [reference]
#
# With `reference`, PLUGIN is the reference `bridge` plugin (containernetworking-plugins, CNI up to 1.0.0) and
# the same scenarios run against it: what both must do is checked for both; messages, codes and what only
# nftpol-bridge offers (STATUS, GC, 1.1.0, the br_netfilter switch) are checked for ours alone.
set -uo pipefail
plugin=$1
probe=$2
reference=${3:-}
source "$(dirname "$0")/../lib/netns.sh"
nftpol_reexec_in_netns "$@"
nftpol_pod_test "nftpol-c$$"
contains() { grep -q -- "$2" <<< "$1"; }  # contains TEXT PATTERN
# Where the reference is known to fall short of what we require of ours: checked for ours, reported for it.
better() {  # better DESCRIPTION COMMAND...
  if ours; then check "$@"; return; fi
  local what=$1; shift
  if "$@"; then echo "ok: $what"; else echo "reference differs: $what"; fi
}
ip link set lo up
[ -d /usr/lib/cni ] || { echo "skipped: containernetworking-plugins (host-local) is not installed"; exit 77; }
ours() { [ -z "$reference" ]; }
if ours; then version=1.1.0 type=nftpol-bridge; else version=1.0.0 type=bridge; fi
# One bridge per subnet, as on a node: the reference plugin refuses a second gateway address on a bridge.
# Ours routes to 10.96.0.0/12 without a gateway (it goes via the pod's gateway, as the bridge plugin does it);
# the reference gets the gateway spelt out, because its CHECK then looks for a route without one and fails.
# No controller on this node: ours goes on without the handoff (best-effort); required is tested at the end.
conf() {  # conf SUBNET [VERSION] [HANDOFF]
  local octet=${1#10.244.} gw=${1%.0/*}.1 route='{"dst": "10.96.0.0/12"}'
  ours || route='{"dst": "10.96.0.0/12", "gw": "'$gw'"}'
  cat <<JSON
{"cniVersion": "${2:-$version}", "name": "pods", "type": "$type", "bridge": "nftpb$$-${octet%%.*}", "isDefaultGateway": true,
 "hairpinMode": true, "mtu": 1400, "controllerSocket": "$dir/cni.sock", "policyHandoff": "${3:-best-effort}",
 "ipam": {"type": "host-local", "dataDir": "$dir/ipam", "ranges": [[{"subnet": "$1"}]], "routes": [$route]}}
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
addresses=$(for i in 1 2 3; do grep -o '"address": *"[^"]*"' "$dir/add$i.json"; done | sort -u | wc -l)
check "three distinct addresses" test "$addresses" = 3
check "the result names the sandbox" grep -q "\"sandbox\": *\"/var/run/netns/$tag-1\"" "$dir/add1.json"
check "the result names the gateway" grep -q "\"gateway\": *\"10.244.5.1\"" "$dir/add1.json"
mac1=$(ip -n "$tag-1" link show eth0 | awk '/link\/ether/ {print $2}')
check "the result gives the container interface's mac ($mac1)" \
  sh -c "tr -d ' \n' < '$dir/add1.json' | grep -o '{[^{}]*\"eth0\"[^{}]*}' | grep -q '\"mac\":\"$mac1\"'"
check "and the bridge's and the host veth's" test "$(grep -o '"mac": *"[0-9a-f:]\{17\}"' "$dir/add1.json" | wc -l)" = 3
check "default route via the gateway in the pod" sh -c "ip -n $tag-1 route show default | grep -q 'via 10.244.5.1 dev eth0'"
check "the IPAM route too" sh -c "ip -n $tag-1 route show 10.96.0.0/12 | grep -q 'via 10.244.5.1'"
check "the gateway address on the bridge" sh -c "ip addr show nftpb$$-5 | grep -q '10.244.5.1/24'"
check "mtu 1400 in the pod" sh -c "ip -n $tag-1 link show eth0 | grep -q 'mtu 1400'"
ours && check "bridged traffic meets nftables" test "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables)" = 1
check "forwarding on" test "$(cat /proc/sys/net/ipv4/ip_forward)" = 1
ip netns exec "$tag-3" "$probe" serve 7000 & pids+=($!)
"$probe" serve 7001 & pids+=($!)
check "the server in pod3 listens" nftpol_listening "$tag-3" tcp+udp 7000
check "the server on the node listens" nftpol_listening "" tcp+udp 7001
ip3=$(ip -n "$tag-3" -4 -o addr show eth0 | awk '{sub("/.*", "", $4); print $4}')
check "pod1 reaches pod3 ($ip3)" ip netns exec "$tag-1" "$probe" connect tcp "$ip3" 7000 2000
check "pod2 reaches the node through the gateway" ip netns exec "$tag-2" "$probe" connect tcp 10.244.5.1 7001 2000
# A port with a lower MAC than any joins the bridge: the bridge keeps its MAC (else it would take the port's, and
# every pod that resolved its gateway before would send to a MAC that is no longer the bridge's).
bridge_mac=$(ip -o link show nftpb$$-5 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
ip link add nftpl$$ address 02:00:00:00:00:01 type veth peer name nftpm$$
ip link set nftpl$$ master nftpb$$-5 up
better "the bridge's MAC stays put when a port with a lower one joins" \
  test "$(ip -o link show nftpb$$-5 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)" = "$bridge_mac"
ip link del nftpl$$

# CHECK against the ADD result, then against drift.
withPrev() { sed "s|}}\$|}, \"prevResult\": $(tr -d '\n' < "$1")}|" <<< "$(conf $subnet | tr -d '\n')"; }
check "CHECK passes right after ADD" cni CHECK pod1 "$tag-1" "$(withPrev "$dir/add1.json")"
ip -n "$tag-1" route del 10.96.0.0/12
out=$(cni CHECK pod1 "$tag-1" "$(withPrev "$dir/add1.json")")
check "CHECK fails on a missing route" test $? != 0
ours && check "CHECK names a missing route" contains "$out" '"msg": "the route to 10.96.0.0/12 is missing in the pod"'
ip -n "$tag-1" addr flush dev eth0
out=$(cni CHECK pod1 "$tag-1" "$(withPrev "$dir/add1.json")")
check "CHECK fails on a missing address" test $? != 0
ours && check "CHECK names a missing address" contains "$out" '"msg": "10.244.5.[0-9]*/24 is missing on eth0"'
out=$(cni CHECK pod1 "$tag-1" "$(conf $subnet)")
check "CHECK without prevResult fails" test $? != 0
ours && check "CHECK without prevResult: code 7" contains "$out" '"code": 7'
if ours; then
  check "STATUS: ready" cni STATUS "" "" "$(conf $subnet)"
  out=$(CNI_COMMAND=STATUS CNI_PATH=/nonexistent "$plugin" <<< "$(conf $subnet)")
  check "STATUS without the IPAM plugin: code 50" contains "$out" '"code": 50'
  # A /30 holds one address besides its gateway: once it is taken, ADD cannot be served.
  ip netns add "$tag-full"
  check "STATUS with a free address in the pool: 0" cni STATUS "" "" "$(conf 10.244.30.0/30)"
  check "ADD takes the pool's last address" cni ADD full "$tag-full" "$(conf 10.244.30.0/30)"
  out=$(cni STATUS "" "" "$(conf 10.244.30.0/30)")
  check "STATUS on an exhausted pool: code 50" contains "$out" '"code": 50'
  check "and says so" contains "$out" 'address pool is exhausted'
  cni DEL full "$tag-full" "$(conf 10.244.30.0/30)" > /dev/null
  check "STATUS after DEL: 0 again" cni STATUS "" "" "$(conf 10.244.30.0/30)"
  out=$(cni STATUS "" "" "$(conf 10.244.30.0/30 1.1.0 required)")
  check "STATUS with the handoff required and no controller: code 50" contains "$out" '"code": 50'
  # Required handoff and no controller: ADD fails with 11 and leaves nothing behind, so the runtime retries.
  ip netns add "$tag-req"
  out=$(CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=req" cni ADD req "$tag-req" "$(conf 10.244.30.0/30 1.1.0 required)")
  check "ADD without the node's controller: code 11" contains "$out" '"code": 11'
  check "and names the socket" contains "$out" "no controller is listening on $dir/cni.sock"
  check "and leaves no veth" test -z "$(ip -n "$tag-req" -o link show eth0 2>/dev/null)"
  check "and no reservation" test -z "$(find "$dir/ipam/pods" -name '10.244.30.*' 2>/dev/null)"
  out=$(cni ADD req "$tag-req" "$(conf 10.244.30.0/30 1.1.0 required)")
  check "ADD with the handoff required and no pod in CNI_ARGS: code 4" contains "$out" '"code": 4'
  out=$(cni ADD req "$tag-req" "$(conf 10.244.30.0/30 1.1.0 best-effort)" 2> "$dir/best-effort.err")
  check "best-effort goes on without the controller" test $? = 0
  check "and says so on stderr" grep -q "not handed to the controller\|going on without it" "$dir/best-effort.err"
  cni DEL req "$tag-req" "$(conf 10.244.30.0/30)" > /dev/null
fi

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
host3=$(grep -oE '"name": *"(nftp|veth)[0-9a-f]+"' "$dir/add3.json" | cut -d'"' -f4)
# The reference leaves the host end to the namespace's end, which a process still inside it (the server here)
# postpones; ours removes it by name.
better "and takes pod3's host end ($host3) with it" sh -c "[ -n '$host3' ] && ! ip link show '$host3' >/dev/null 2>&1"

if ours; then
  # GC: a runtime that lost a DEL names the attachments it still has; the rest of the network is released.
  ip netns add "$tag-gc1"
  ip netns add "$tag-gc2"
  cni ADD gcKeep "$tag-gc1" "$(conf $subnet)" > "$dir/gcKeep.json"
  cni ADD gcLost "$tag-gc2" "$(conf $subnet)" > "$dir/gcLost.json"
  lost=$(grep -oE '"name": *"nftp[0-9a-f]+"' "$dir/gcLost.json" | cut -d'"' -f4)
  valid='{"containerID": "pod1", "ifname": "eth0"}, {"containerID": "gcKeep", "ifname": "eth0"}'
  for i in $(seq 16); do valid+=", {\"containerID\": \"par$i\", \"ifname\": \"eth0\"}"; done
  gcConf=$(conf $subnet | tr -d '\n' | sed "s|}}\$|}, \"cni.dev/valid-attachments\": [$valid]}|")
  out=$(CNI_COMMAND=GC CNI_PATH=/usr/lib/cni "$plugin" <<< "$gcConf")
  check "GC exits 0 ($out)" test $? = 0
  check "GC releases the lost pod's address" sh -c "! grep -rq gcLost $dir/ipam/pods/"
  check "GC removes the lost pod's veth ($lost)" sh -c "[ -n '$lost' ] && ! ip link show '$lost' >/dev/null 2>&1"
  check "GC keeps every valid reservation" test "$(grep -rlE 'pod1|gcKeep|par[0-9]+' "$dir/ipam/pods/" | wc -l)" = 18
  check "GC keeps the valid pods wired" ip netns exec "$tag-gc1" "$probe" connect tcp 10.244.5.1 7001 2000
  out=$(CNI_COMMAND=GC CNI_PATH=/usr/lib/cni "$plugin" <<< "$(conf $subnet)")
  check "GC without valid-attachments releases nothing: code 7" contains "$out" '"code": 7'

  # ADD as the second plugin of a chain: the previous result is kept, ours appended after it.
  ip netns add "$tag-chain"
  prev='{"cniVersion": "1.1.0", "interfaces": [{"name": "lo", "sandbox": "/var/run/netns/'$tag-chain'"}], "ips": [{"address": "192.0.2.1/32", "interface": 0}], "dns": {"nameservers": ["10.96.0.10"]}}'
  out=$(cni ADD chain "$tag-chain" "$(conf $subnet | tr -d '\n' | sed "s|}}\$|}, \"prevResult\": $prev}|")")
  check "chained ADD exits 0" test $? = 0
  check "chained ADD keeps the previous interface first" contains "$out" '"interfaces":\[{"name":"lo"'
  check "chained ADD keeps the previous ip" contains "$out" '"address":"192.0.2.1/32","interface":0'
  check "chained ADD points its ip at its own eth0 (index 3)" contains "$out" '"address":"10.244.5.[0-9]*/24","gateway":"10.244.5.1","interface":3'
  check "chained ADD keeps the previous dns" contains "$out" '"nameservers":\["10.96.0.10"\]'
  out=$(cni ADD chain2 "$tag-chain" "$(conf $subnet | tr -d '\n' | sed "s|}}\$|}, \"prevResult\": {\"interfaces\": 3}}|")")
  check "a prevResult of the wrong shape: code 7 before anything is made" contains "$out" '"code": 7'
  check "and no reservation" sh -c "! grep -rq chain2 $dir/ipam/pods/"

  # Dual stack: host-local hands out an address of each family, and the pod gets both and a default route each.
  ip netns add "$tag-dual"
  dualConf=$(conf 10.244.10.0/24 | sed 's|"ranges": \[\[{"subnet": "10.244.10.0/24"}\]\]|"ranges": [[{"subnet": "10.244.10.0/24"}], [{"subnet": "fd00:10::/64"}]]|')
  out=$(cni ADD dual "$tag-dual" "$dualConf")
  check "a dual-stack ADD exits 0 ($out)" test $? = 0
  check "the result lists both addresses" bash -c "grep -q '10.244.10.[0-9]*/24' <<< '$out' && grep -q 'fd00:10::[0-9a-f]*/64' <<< '$out'"
  check "the pod has its IPv6 address" sh -c "ip -n $tag-dual -6 addr show dev eth0 | grep -q 'fd00:10::'"
  check "and an IPv6 default route via the gateway" sh -c "ip -n $tag-dual -6 route show default | grep -q 'via fd00:10::1'"
  check "the node forwards IPv6" test "$(cat /proc/sys/net/ipv6/conf/all/forwarding)" = 1
  check "CHECK passes for both families" cni CHECK dual "$tag-dual" "$(sed "s|}}\$|}, \"prevResult\": $(tr -d '\n' <<< "$out")}|" <<< "$(tr -d '\n' <<< "$dualConf")")"

  # ipMasq: one masquerade rule per network and subnet in the plugin's own table, however many ADDs raced; a
  # pod reaches a host beyond the node (which has no route back to pods) only through it.
  masqConf=$(conf 10.244.9.0/24 | sed 's/"mtu": 1400,/"mtu": 1400, "ipMasq": true,/')
  adds=()
  for i in 1 2 3 4; do
    ip netns add "$tag-m$i"
    cni ADD "masq$i" "$tag-m$i" "$masqConf" > "$dir/masq$i.json" & adds+=($!)
  done
  wait "${adds[@]}"
  rule='ip saddr 10.244.9.0/24 ip daddr != 10.244.9.0/24 ip daddr != 224.0.0.0/4 masquerade'
  check "4 parallel ipMasq ADDs leave one masquerade rule" [ "$(nft list table inet nftpol-bridge | grep -c "$rule")" = 1 ]
  ip netns add "$tag-out"
  ip link add "nftpo$$" type veth peer name eth0 netns "$tag-out"
  ip addr add 192.168.77.1/24 dev "nftpo$$" && ip link set "nftpo$$" up
  ip -n "$tag-out" addr add 192.168.77.2/24 dev eth0 && ip -n "$tag-out" link set eth0 up
  ip netns exec "$tag-out" "$probe" serve 7100 & pids+=($!)
  check "the server beyond the node listens" nftpol_listening "$tag-out" tcp+udp 7100
  check "a pod with ipMasq reaches a host beyond the node" ip netns exec "$tag-m1" "$probe" connect tcp 192.168.77.2 7100 2000
  check "a pod without it does not (the host has no route back)" \
    bash -c "! ip netns exec $tag-gc1 $probe connect tcp 192.168.77.2 7100 500"
fi

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
veths() { ip -o link show type veth | wc -l; }
links=$(veths)
ip netns add "$tag-x14"
out=$(cni ADD x14 "$tag-x14" "$(conf $small)")
code=$?
check "exhausted pool: non-zero exit" test "$code" != 0
check "exhausted pool: host-local's error ($out)" contains "$out" 'no IP addresses available'
ours && check "exhausted pool: error JSON from IPAM" contains "$out" '"msg": "IPAM host-local: .*no IP addresses available'
# The reference makes the veth before it asks IPAM, and leaves it to the namespace's end when IPAM fails.
better "exhausted pool: no leaked veth" test "$(veths)" = "$links"

# A second ADD of the same interface into a pod fails with the kernel's reason and leaves nothing behind.
links=$(veths)
out=$(cni ADD again "$tag-1" "$(conf $subnet)")
check "ADD onto an existing eth0 fails" test $? != 0
ours && check "and says why" contains "$out" '"msg": "cannot create the pod.s veth pair", "details": ".*File exists"'
check "and rolls back its veth" test "$(veths)" = "$links"
check "and its address" sh -c "! grep -rq again $dir/ipam/pods/"

# Bad calls fail with an error object; ours with the spec's codes.
bad() {  # bad DESCRIPTION CODE OUTPUT EXIT
  check "$1: non-zero exit" test "$4" != 0
  check "$1: an error object" contains "$3" '"code": *[0-9]'
  ours && check "$1: code $2" contains "$3" "\"code\": $2[,}]"
}
out=$(cni ADD bad "$tag-1" '{"cniVersion": "'$version'", "name": "pods", "type": "'$type'", "mtu": "x", "ipam": {"type": "host-local"}}')
bad "bad config" 7 "$out" $?
out=$(cni ADD bad "$tag-1" '{"cniVersion": "9.9.9", "name": "pods", "type": "'$type'", "ipam": {"type": "host-local"}}')
bad "unknown version" 1 "$out" $?
out=$(cni ADD bad "$tag-1" 'not json')
bad "not JSON" 6 "$out" $?
out=$(CNI_COMMAND=ADD CNI_PATH=/usr/lib/cni "$plugin" <<< "$(conf $subnet)")
bad "missing CNI_CONTAINERID" 4 "$out" $?
out=$(CNI_COMMAND=VERSION "$plugin" < /dev/null)
check "VERSION lists 1.0.0" contains "$out" '"supportedVersions": *\[.*"1.0.0"'
ours && check "VERSION lists 1.0.0 and 1.1.0" contains "$out" '"supportedVersions": \["1.0.0", "1.1.0"\]'
ip netns add "$tag-v10"
out=$(cni ADD v10 "$tag-v10" "$(conf 10.244.7.0/24 1.0.0)" | tr -d '\n')
check "a 1.0.0 config gets a 1.0.0 result" contains "$out" '"cniVersion": *"1.0.0",.*"interfaces"'

echo "cni plugin${reference:+ (reference)}: $passed passed, $failed failed"
[ "$failed" = 0 ]
