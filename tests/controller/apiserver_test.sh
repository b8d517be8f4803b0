#!/usr/bin/env bash
# The controller following the Kubernetes API: nftpol-test-apiserver (the real list/watch wire protocol over TLS,
# with a test CA and a bearer token) and the controller with --kubeconfig, both in a network namespace of their
# own. After every change and every fault the server injects (a stream cut mid-event, 410 Gone in a watch, a line
# that is not an event, a stalled stream, a slow server) the kernel must hold exactly what `nftpol render` makes
# of the server's objects; a wrong token, a client certificate from another CA, an unknown CA and a server name
# the certificate does not hold must keep the controller unready and say why; a client certificate and a
# kubeconfig's tls-server-name must work. ClusterNetworkPolicies follow like the rest, and the v1alpha1 kinds,
# whose CRDs the server lacks, are reported missing and do not hold readiness back.
set -uo pipefail
nftpol=$1
apiserver=$2
source "$(dirname "$0")/../lib/netns.sh"
nftpol_reexec_in_netns "$@"
nftpol_pod_test "nftpol-a$$"
ip link set lo up

source "$(dirname "$0")/../lib/apiserver.sh"
nftpol_apiserver "$apiserver"
ns() { put namespaces "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"$1\",\"labels\":{\"ns\":\"$1\"}}}"; }
pod() {  # NAMESPACE NAME IP NODE [LABEL]
  put pods "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"$2\",\"namespace\":\"$1\",\"labels\":{\"app\":\"${5:-$2}\"}},\"spec\":{\"nodeName\":\"$4\",\"containers\":[{\"name\":\"c\",\"ports\":[{\"name\":\"http\",\"containerPort\":8080}]}]},\"status\":{\"phase\":\"Running\",\"podIP\":\"$3\"}}"
}
policy() {  # NAMESPACE NAME FROM-APP
  put networkpolicies "{\"apiVersion\":\"networking.k8s.io/v1\",\"kind\":\"NetworkPolicy\",\"metadata\":{\"name\":\"$2\",\"namespace\":\"$1\"},\"spec\":{\"podSelector\":{},\"ingress\":[{\"from\":[{\"podSelector\":{\"matchLabels\":{\"app\":\"$3\"}}}],\"ports\":[{\"port\":\"http\"}]}]}}"
}
requests() {  # lists, watches or unauthorized: how many the server answered (not in a pipeline: the coproc's
  local counts   # descriptors stay with this shell)
  counts=$(api requests)
  awk -v what="$1" '{for (i = 1; i < NF; i++) if ($i == what) print $(i + 1)}' <<< "$counts" | grep . ||
    { echo "FAIL: no request counts"; exit 1; }
}

ns x
ns y
pod x a 10.244.1.10 node-1
pod x b 10.244.1.11 node-1
pod y a 10.244.2.10 node-2
policy x from-b b
put nodes '{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-2"},"spec":{"podCIDR":"10.244.2.0/24"},"status":{"addresses":[{"type":"InternalIP","address":"127.0.0.2"}]}}'

"$nftpol" controller --kubeconfig "$dir/kubeconfig" --node node-1 --listen 127.0.0.1:9434 --cni-socket "$dir/cni.sock" --api-timeout 2 \
  --no-node-routes 2> "$dir/controller.log" &
controller=$!
pids+=($controller)

# in_step: waits (at most 5 s) until the kernel holds what render makes of the server's objects.
in_step() {
  local _
  for _ in $(seq 50); do
    rm -f "$dir/dump.json"
    [ "$(api dump "$dir/dump.json")" = ok ] || exit 1
    if diff <("$nftpol" render --cluster "$dir/dump.json" --node node-1 2>/dev/null | nftpol_blocks) \
            <(nft list table inet nftpol 2>/dev/null | nftpol_blocks) > /dev/null; then
      return 0
    fi
    sleep 0.1
  done
  diff <("$nftpol" render --cluster "$dir/dump.json" --node node-1 2>&1 | nftpol_blocks) \
       <(nft list table inet nftpol 2>/dev/null | nftpol_blocks) | head -10
  return 1
}

ready() { [[ $(curl -sf localhost:9434/readyz) == "ready generation="* ]]; }
check "ready once every kind is listed" nftpol_wait_for 5 ready
check "the kernel holds what the server's objects render to" in_step

pod x c 10.244.1.12 node-1 b
check "a pod added: its address joins the allowed peers" in_step
pod x b 10.244.1.11 node-1 other
check "a pod relabelled out of the peers" in_step
[ "$(api delete networkpolicies x/from-b)" = ok ]
check "a policy deleted" in_step
policy x from-other other
check "a policy added" in_step
cnp() {  # NAME PRIORITY FROM-NAMESPACE: an Admin tier policy denying ingress into x from that namespace
  put clusternetworkpolicies "{\"apiVersion\":\"policy.networking.k8s.io/v1alpha2\",\"kind\":\"ClusterNetworkPolicy\",\"metadata\":{\"name\":\"$1\"},\"spec\":{\"tier\":\"Admin\",\"priority\":$2,\"subject\":{\"namespaces\":{\"matchLabels\":{\"ns\":\"x\"}}},\"ingress\":[{\"action\":\"Deny\",\"from\":[{\"namespaces\":{\"matchLabels\":{\"ns\":\"$3\"}}}]}]}}"
}
cnp guard 10 y
check "a cluster policy added: its Admin tier chain" in_step
check "is in the kernel, and jumps to its chain" bash -c "nft list table inet nftpol | grep -A4 'chain admin-ingress-' | grep -q 'jump .*cnp-ingress-.*/cnp/guard'"
cnp guard 20 z
check "a cluster policy changed" in_step
[ "$(api delete clusternetworkpolicies guard)" = ok ]
check "a cluster policy deleted" in_step
check "its chain is gone" bash -c "! nft list table inet nftpol | grep -q 'cnp/guard'"
# The server has no AdminNetworkPolicy or BaselineAdminNetworkPolicy CRD: the controller works without them
# and says so once for each.
check "the cluster policy kinds the server lacks are reported once each" \
  [ "$(grep -c 'event=api-kind-missing' "$dir/controller.log")" = 2 ]

lists=$(requests lists)
api fault pods cut > /dev/null
pod y b 10.244.2.11 node-2
check "a watch cut mid-event is resumed" in_step
check "from its resourceVersion, without a list" [ "$(requests lists)" = "$lists" ]

# x/c goes while the pod watch is stalled, and the server compacts past it: only a list can tell. Stalled
# longer than --api-timeout, the stream is given up and resumed (and 410 answers the resumption).
api fault pods stall > /dev/null
[ "$(api delete pods x/c)" = ok ]
api compact > /dev/null
check "a stalled stream is noticed (the stall timeout)" \
  nftpol_wait_for 10 grep -q 'event=api-watch-failed kind=Pod' "$dir/controller.log"
api fault pods none > /dev/null
check "410 Gone lists again, and what vanished meanwhile is removed" in_step

lists=$(requests lists)
api fault pods gone > /dev/null
pod x d 10.244.1.13 node-1 other
check "an ERROR event with 410 in a watch lists again" in_step
check "and did list" [ "$(requests lists)" -gt "$lists" ]

# An open watch that a compaction overtook: x/d goes while the watch stalls, the log is compacted, and the
# stall ends before the controller gives the stream up. The server tells that watch it fell behind (an ERROR
# event with 410), as the API server does; bookmarks alone would carry it past the deletion it never saw.
lists=$(requests lists)
api fault pods stall > /dev/null
[ "$(api delete pods x/d)" = ok ]
api compact > /dev/null
api fault pods none > /dev/null
check "a watch a compaction overtook lists again, and what vanished is removed" in_step
check "and did list" [ "$(requests lists)" -gt "$lists" ]

api fault networkpolicies garbage > /dev/null
policy y from-a a
check "a line that is not an event lists again" in_step

api slow 400 > /dev/null
pod y c 10.244.2.12 node-2 a
check "a slow server" in_step
api slow 0 > /dev/null

check "it never stopped being ready" ready
check "it logged no crash and no error" bash -c "! grep -q 'level=error' '$dir/controller.log'"

# Credentials that do not work: the controller keeps trying, is not ready, and says why. stranger-cert is a
# client certificate another CA signed; wrong-name the server at 127.0.0.2, which its certificate does not name,
# without tls-server-name.
declare -A why=([wrong-token]='HTTP 401' [stranger-cert]='HTTP 401' [unknown-ca]='certificate\|handshake\|verify'
  [wrong-name]='certificate\|handshake\|verify')
for wrong in wrong-token stranger-cert unknown-ca wrong-name; do
  "$nftpol" controller --kubeconfig "$dir/kubeconfig-$wrong" --node node-1 --listen 127.0.0.1:9435 --cni-socket "$dir/cni-2.sock" \
    --no-node-routes 2> "$dir/$wrong.log" &
  bad=$!
  pids+=($bad)
  check "$wrong: the log says why (${why[$wrong]})" nftpol_wait_for 10 grep -qi "${why[$wrong]}" "$dir/$wrong.log"
  check "$wrong: not ready" [ "$(curl -s -o /dev/null -w '%{http_code}' localhost:9435/readyz)" = 503 ]
  check "$wrong: SIGTERM while it retries: gone within 2 s" nftpol_stop 2 "$bad"
done
# With tls-server-name: nftpol-test-apiserver, the same server at 127.0.0.2 is verified against that name.
"$nftpol" controller --kubeconfig "$dir/kubeconfig-server-name" --node node-1 --listen 127.0.0.1:9435 --cni-socket "$dir/cni-2.sock" \
  --no-node-routes --once 2> "$dir/server-name.log"
check "tls-server-name: the certificate is verified against that name (exit $?)" [ $? = 0 ] ||
  tail -20 "$dir/server-name.log"
# A client certificate from the kubeconfig, signed by the CA the server trusts, and no token.
"$nftpol" controller --kubeconfig "$dir/kubeconfig-client-cert" --node node-1 --listen 127.0.0.1:9435 --cni-socket "$dir/cni-2.sock" \
  --no-node-routes --once 2> "$dir/client-cert.log"
check "a client certificate authenticates (exit $?)" [ $? = 0 ] || tail -20 "$dir/client-cert.log"

api fault pods stall > /dev/null
pod x e 10.244.1.14 node-1
check "SIGTERM with a watch stalled: gone within 2 s" nftpol_stop 2 "$controller"
check "with status 0" [ "${nftpol_status[$controller]}" = 0 ]
check "and it said so" grep -q 'event=stop' "$dir/controller.log"
check "the rules stay in place" bash -c "nft list table inet nftpol > /dev/null"

echo "apiserver: $passed passed, $failed failed"
[ "$failed" = 0 ]
