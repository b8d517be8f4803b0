#!/usr/bin/env bash
# Protected from the first packet: nftpol-bridge hands each new pod to the node's controller (its unix socket)
# before any link of the pod exists, and ADD returns only once the pod's policies hold. The node is this test's
# own network namespace (`unshare --net`); pods are namespaces nftpol-h<pid>-*, attached by the plugin with
# host-local as a runtime attaches them. Probers (`nftpol-probe storm`: a connection every 2 ms, many in
# flight, each bounded) run inside the pods from before ADD until a second after it, and the checks read every
# attempt.
#
#   handoff_test.sh NFTPOL PLUGIN PROBE                  the controller reads a manifests directory
#   handoff_test.sh NFTPOL PLUGIN PROBE APISERVER        it lists and watches nftpol-test-apiserver; pod
#                                                        objects exist before ADD, their status.podIP arrives
#                                                        seconds after it, as the kubelet writes it
set -uo pipefail
nftpol=$1
plugin=$2
probe=$3
apiserver=${4:-}
source "$(dirname "$0")/../lib/netns.sh"
nftpol_reexec_in_netns "$@"
[ -x /usr/lib/cni/host-local ] || { echo "skipped: no host-local in /usr/lib/cni (containernetworking-plugins)"; exit 77; }
nftpol_pod_test "nftpol-h$$"
ip link set lo up
sock=$dir/cni.sock
mkdir -p "$dir/m"
port=9438

# Three addresses in the pool (.2-.4), so that a DEL's address is the next ADD's.
cni() {  # cni COMMAND POD: the pod namespace $tag-POD, pod app/POD; prints the plugin's stdout
  CNI_COMMAND=$1 CNI_CONTAINERID="c-$2" CNI_NETNS="/var/run/netns/$tag-$2" CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=app;K8S_POD_NAME=$2;K8S_POD_UID=uid-$2" "$plugin" <<JSON
{"cniVersion": "1.1.0", "name": "pods", "type": "nftpol-bridge", "bridge": "nftph$$", "isDefaultGateway": true,
 "controllerSocket": "$sock", "controllerTimeoutMs": 3000,
 "ipam": {"type": "host-local", "dataDir": "$dir/ipam",
          "ranges": [[{"subnet": "10.244.1.0/24", "rangeStart": "10.244.1.2", "rangeEnd": "10.244.1.4"}]]}}
JSON
}
pod_ip() { ip -n "$tag-$1" -4 -o addr show eth0 2>/dev/null | awk '{sub("/.*", "", $4); print $4}'; }
generation() { curl -sf "127.0.0.1:$port/readyz" | sed -n 's/^ready generation=//p'; }
past() { local g; g=$(generation); [ -n "$g" ] && [ "$g" -gt "$1" ]; }

# The policies exist before the pods do: `new` may reach `allowed` and nothing else, and nobody may reach it;
# `allowed` admits `new` only. The pods' objects carry no address: the plugin brings it (and with the API, the
# kubelet writes status.podIP later). One object a line: its resource, then its JSON.
pod() {  # pod NAME [ADDRESS]
  local status=""
  [ -n "${2:-}" ] && status=',"status":{"phase":"Running","podIP":"'$2'","podIPs":[{"ip":"'$2'"}]}'
  echo 'pods {"apiVersion":"v1","kind":"Pod","metadata":{"name":"'$1'","namespace":"app","uid":"uid-'$1'","labels":{"app":"'$1'"}},"spec":{"nodeName":"node-1","containers":[{"name":"c","image":"i"}]}'"$status}"
}
objects() {
  echo 'namespaces {"apiVersion":"v1","kind":"Namespace","metadata":{"name":"app"}}'
  echo 'nodes {"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1"},"spec":{"podCIDR":"10.244.1.0/24"}}'
  for p in allowed denied new other; do pod "$p"; done
  echo 'networkpolicies {"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"new-to-allowed-only","namespace":"app"},"spec":{"podSelector":{"matchLabels":{"app":"new"}},"policyTypes":["Ingress","Egress"],"egress":[{"to":[{"podSelector":{"matchLabels":{"app":"allowed"}}}],"ports":[{"port":8080}]}]}}'
  echo 'networkpolicies {"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"allowed-from-new","namespace":"app"},"spec":{"podSelector":{"matchLabels":{"app":"allowed"}},"policyTypes":["Ingress"],"ingress":[{"from":[{"podSelector":{"matchLabels":{"app":"new"}}}]}]}}'
  echo 'networkpolicies {"apiVersion":"networking.k8s.io/v1","kind":"NetworkPolicy","metadata":{"name":"other-isolated","namespace":"app"},"spec":{"podSelector":{"matchLabels":{"app":"other"}},"policyTypes":["Ingress"]}}'
}
if [ -n "$apiserver" ]; then
  source "$(dirname "$0")/../lib/apiserver.sh"
  nftpol_node_address
  nftpol_apiserver "$apiserver"
  while read -r resource json; do put "$resource" "$json"; done <<< "$(objects)"
  source_args=(--kubeconfig "$dir/kubeconfig")
  # kubelet PODLINE: the kubelet writes the pod's status (a pod line of `pod NAME ADDRESS`).
  kubelet() { put pods "${1#pods }"; }
else
  # A list of JSON objects is YAML too: the manifests hold exactly what the server would.
  { echo '{"apiVersion":"v1","kind":"List","items":['; objects | cut -d' ' -f2- | paste -sd,; echo ']}'; } |
    nftpol_write "$dir/m/objects.json"
  source_args=(--manifests "$dir/m")
  kubelet() { :; }  # a manifests directory has no kubelet: the plugin's addresses are all there is
fi

# No controller: ADD fails with "try again later" and leaves nothing behind.
ip netns add "$tag-allowed"
out=$(cni ADD allowed)
check "no controller: ADD fails with code 11" grep -q '"code": 11' <<< "$out"
check "and leaves no veth and no reservation" test -z "$(pod_ip allowed)$(ls "$dir/ipam/pods" 2>/dev/null | grep 10.244)"

"$nftpol" controller "${source_args[@]}" --node node-1 --listen "127.0.0.1:$port" --no-node-routes \
  --cni-socket "$sock" 2> "$dir/controller.log" & pids+=($!)
check "the controller listens on its socket" nftpol_wait_for 10 test -S "$sock"
# The socket appears at its path only once it is 0600 and listening (made under a name of its own, then
# renamed): finding it is enough to use it.
check "the socket is the node's: mode 0600" test "$(stat -c %a "$sock")" = 600
check "and nothing is left under the name it was made as" test ! -e "$sock~"
check "the controller synced" nftpol_wait_for 10 past 0 || exit 1
out=$(cni ADD allowed)
check "with the controller up the retry succeeds" test $? = 0 || echo "$out"
ip netns add "$tag-denied"
cni ADD denied > /dev/null
check "denied attached" test -n "$(pod_ip denied)"
for p in allowed denied; do ip netns exec "$tag-$p" "$probe" serve 8080 & pids+=($!); done
for p in allowed denied; do check "$p serves" nftpol_listening "$tag-$p" tcp 8080; done
allowed=$(pod_ip allowed) denied=$(pod_ip denied)
kubelet "$(pod allowed "$allowed")"
kubelet "$(pod denied "$denied")"

# storm NETNS ADDRESS LOG: connects from NETNS to ADDRESS:8080 until $dir/stop exists (30 s at most); a line
# per attempt: "<start time> ok|no".
storm() { ip netns exec "$1" "$probe" storm "$2" 8080 2 500 30000 "$dir/stop" > "$3"; }
# after LOG [T]: the attempts begun at or after T (default: when ADD returned), in the order they began.
after() { awk -v t="${2:-$returned}" '$1 >= t' "$1" | sort -n; }

# The next pod's address is the pool's one left: probe it before it exists.
ip netns add "$tag-new"
for next in 10.244.1.2 10.244.1.3 10.244.1.4; do [ "$next" != "$allowed" ] && [ "$next" != "$denied" ] && break; done
ip netns exec "$tag-new" "$probe" serve 8080 & pids+=($!)
probers=()
storm "$tag-new" "$allowed" "$dir/to-allowed" & probers+=($!)
storm "$tag-new" "$denied" "$dir/to-denied" & probers+=($!)
storm "$tag-denied" "$next" "$dir/from-denied" & probers+=($!)
pids+=("${probers[@]}")
# The probers are at work once each has reported an attempt.
check "the probers are at work before ADD" nftpol_wait_for 10 test -s "$dir/to-allowed" -a -s "$dir/to-denied" -a -s "$dir/from-denied"
passes() { grep -c 'event=conntrack-revoked' "$dir/controller.log"; }
more_passes() { [ "$(passes)" -gt "$1" ]; }
before=$(passes)
out=$(cni ADD new)
status=$? returned=$EPOCHREALTIME
check "ADD of the new pod succeeds" test $status = 0 || echo "$out"
check "it got the address probed before it existed ($next)" test "$(pod_ip new)" = "$next"
if [ -n "$apiserver" ]; then
  # The kubelet writes status.podIP seconds after ADD returned; the pod stays protected and reachable through it.
  sleep 2  # not a wait for anything: the kubelet's delay, probed throughout
  check "a new pod's first addresses owe no conntrack pass (the revoker's dump would slow every ADD)" \
    test "$(passes)" = "$before"
  g=$(generation)
  kubelet "$(pod new "$next")"
  check "the controller took the pod's status" nftpol_wait_for 5 past "$g"
fi
sleep 1  # not a wait for anything: the second of probing that the checks below read
touch "$dir/stop"
wait "${probers[@]}"  # each ends once its attempts in flight are answered or timed out (500 ms)
[ -z "$apiserver" ] && check "a new pod's first addresses owe no conntrack pass (the revoker's dump would slow every ADD)" \
  test "$(passes)" = "$before"
attempts=$(wc -l < "$dir/to-denied")
check "the new pod probed its peers before and through ADD ($attempts attempts to the denied one, $(awk -v t="$returned" '$1 < t' "$dir/to-denied" | wc -l) before ADD returned)" \
  test "$(after "$dir/to-denied" | wc -l)" -gt 100
check "no connection from the new pod to a server its policy denies, ever" \
  test "$(grep -c ' ok$' "$dir/to-denied")" = 0
check "no connection from a denied client into the new pod, ever ($(wc -l < "$dir/from-denied") attempts)" \
  test "$(grep -c ' ok$' "$dir/from-denied")" = 0
check "the allowed server answers the first attempt begun after ADD returned" \
  test "$(after "$dir/to-allowed" | head -1 | awk '{print $2}')" = ok
check "and every one after it ($(after "$dir/to-allowed" | wc -l) attempts)" \
  test "$(after "$dir/to-allowed" | grep -c ' no$')" = 0
check "the controller answered after its commit" grep -q 'event=cni-add pod=app/new .*status=programmed' "$dir/controller.log"

# DEL, then another pod gets the same address: it never gets the old pod's allowance to `allowed`.
rm -f "$dir/stop"
ip netns add "$tag-other"
probers=()
storm "$tag-other" "$allowed" "$dir/other-to-allowed" & probers+=($!)
pids+=("${probers[@]}")
check "the prober of the next pod is at work" nftpol_wait_for 10 test -s "$dir/other-to-allowed"
before=$(passes)
tracked() { grep -q -e "src=$next " -e "dst=$next " /proc/net/nf_conntrack; }
untracked() { ! tracked; }
check "before DEL the node tracks connections of the pod's address" tracked
cni DEL new > /dev/null
check "DEL succeeds" test $? = 0
check "DEL deleted every connection of the address before it returned" untracked
check "it deleted the address's connections itself, and owes no conntrack pass" test "$(passes)" = "$before"
check "the controller released the address before DEL returned" \
  grep -q 'event=cni-del pod=app/new container=c-new status=released' "$dir/controller.log"
out=$(cni ADD other)
check "ADD of another pod succeeds" test $? = 0 || echo "$out"
check "it got the same address" test "$(pod_ip other)" = "$next"
# With the API, the old pod's object still holds the address in its status.podIP when the new one's arrives.
kubelet "$(pod other "$next")"
sleep 1  # the second of probing after the swap
touch "$dir/stop"
wait "${probers[@]}"
check "the pod that took the address over never reached what its predecessor could" \
  test "$(grep -c ' ok$' "$dir/other-to-allowed")" = 0
check "it probed through the swap ($(wc -l < "$dir/other-to-allowed") attempts)" \
  test "$(wc -l < "$dir/other-to-allowed")" -gt 100

# The socket refuses what is not one request.
check "a malformed request is refused, saying why" bash -c \
  "python3 -c 'import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(\"$sock\"); s.send(b\"{\"); print(s.recv(4096).decode())' | grep -q 'malformed request'"
check "an oversized one too" bash -c \
  "python3 -c 'import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(\"$sock\"); s.send(b\" \" * 20000); print(s.recv(4096).decode())' | grep -q 'over the limit'"
check "and a silent client is dropped within its second" bash -c \
  "python3 -c 'import socket; s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.settimeout(3); s.connect(\"$sock\"); print(s.recv(4096).decode())' | grep -q 'no request within'"
check "the controller still answers" bash -c "CNI_COMMAND=STATUS CNI_PATH=/usr/lib/cni '$plugin' <<< '{\"cniVersion\": \"1.1.0\", \"name\": \"pods\", \"type\": \"nftpol-bridge\", \"controllerSocket\": \"$sock\", \"ipam\": {\"type\": \"host-local\", \"subnet\": \"10.244.1.0/24\", \"dataDir\": \"$dir/ipam\"}}'"
check "no error logged" bash -c "! grep -q 'level=error' '$dir/controller.log'"
[ "$failed" = 0 ] || tail -30 "$dir/controller.log"
echo "handoff: $passed passed, $failed failed"
[ "$failed" = 0 ]
