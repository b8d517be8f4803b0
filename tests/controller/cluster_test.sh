#!/usr/bin/env bash
# A small cluster out of network namespaces: two nodes joined by a fabric (a bridge in a namespace of its own),
# pods attached to each node by nftpol-bridge with host-local, one controller per node on the same manifests
# directory, and a host outside the cluster on the fabric. Pods reach each other across nodes over the routes
# the controllers program; a service spreads connections over backends on both nodes; a NodePort answers from
# outside and from the other node. Everything lives in namespaces named nftpol-m<pid>-* inside a namespace of
# the test's own (`unshare --net`); probes are bounded; all is removed on exit.
set -uo pipefail
nftpol=$1
probe=$2
plugin=$3
source "$(dirname "$0")/../lib/netns.sh"
source "$(dirname "$0")/../lib/cluster.sh"
nftpol_reexec_in_netns "$@"
[ -x /usr/lib/cni/host-local ] || { echo "skipped: containernetworking-plugins (host-local) is not installed"; exit 77; }
nftpol_pod_test "nftpol-m$$"
count() { nftpol_count "$@"; }
generation() { nftpol_generation "$1" 9414; }
wait_past() { nftpol_wait_past "$1" 9414 "$2"; }

# The fabric, two nodes on it (172.18.0.11, .12) and a host outside the cluster (.100).
ip link set lo up
nftpol_fabric
nftpol_node 1
nftpol_node 2
nftpol_attach "$tag-outside" 172.18.0.100 outside
add_pod() { nftpol_cni_pod "$@"; }
add_pod client 1
add_pod web1 1
add_pod web2 2
for w in web1 web2; do NFTPOL_PROBE_NAME=$w ip netns exec "$tag-$w" "$probe" serve 8080 & pids+=($!); done
for w in web1 web2; do check "$w listens" nftpol_listening "$tag-$w" tcp+udp 8080; done

mkdir "$dir/m"
nodes() { nftpol_nodes "$@"; }
nodes 1 2 > "$dir/m/nodes.yaml"
{
  echo "apiVersion: v1"; echo "kind: List"; echo "items:"
  echo "- {apiVersion: v1, kind: Namespace, metadata: {name: app}}"
  for p in client web1 web2; do
    echo "- {apiVersion: v1, kind: Pod, metadata: {name: $p, namespace: app, labels: {app: ${p%[0-9]}}}, spec: {nodeName: node-${pod_node[$p]}, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}, status: {podIP: ${pod_ip[$p]}}}"
  done
  echo "- {apiVersion: v1, kind: Service, metadata: {name: web, namespace: app}, spec: {type: NodePort, clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: http, nodePort: 30080}]}}"
  echo "- {apiVersion: v1, kind: Service, metadata: {name: local, namespace: app}, spec: {type: NodePort, clusterIP: 10.96.0.11, externalTrafficPolicy: Local, internalTrafficPolicy: Local, ports: [{name: http, port: 80, targetPort: http, nodePort: 30081}]}}"
  echo "- apiVersion: discovery.k8s.io/v1"
  echo "  kind: EndpointSlice"
  echo "  metadata: {name: web-1, namespace: app, labels: {kubernetes.io/service-name: web}}"
  echo "  addressType: IPv4"
  echo "  ports: [{name: http, port: 8080}]"
  echo "  endpoints:"
  for w in web1 web2; do echo "  - {addresses: [${pod_ip[$w]}], nodeName: node-${pod_node[$w]}, targetRef: {kind: Pod, name: $w}}"; done
  echo "- apiVersion: discovery.k8s.io/v1"
  echo "  kind: EndpointSlice"
  echo "  metadata: {name: local-1, namespace: app, labels: {kubernetes.io/service-name: local}}"
  echo "  addressType: IPv4"
  echo "  ports: [{name: http, port: 8080}]"
  echo "  endpoints:"
  for w in web1 web2; do echo "  - {addresses: [${pod_ip[$w]}], nodeName: node-${pod_node[$w]}, targetRef: {kind: Pod, name: $w}}"; done
} > "$dir/m/app.yaml"

for n in 1 2; do
  ip netns exec "$tag-node$n" "$nftpol" controller --manifests "$dir/m" --node "node-$n" --listen 127.0.0.1:9414 --cni-socket "$dir/cni-$n.sock" \
    2> "$dir/controller-$n.log" & pids+=($!)
done
for n in 1 2; do check "node-$n's controller is in sync" wait_past "$n" 0 || cat "$dir/controller-$n.log"; done

check "node-1 routes node-2's pod subnet via node-2" \
  bash -c "ip -n $tag-node1 route show proto 86 | grep -q '10.244.2.0/24 via 172.18.0.12'"
check "node-2 routes node-1's pod subnet via node-1" \
  bash -c "ip -n $tag-node2 route show proto 86 | grep -q '10.244.1.0/24 via 172.18.0.11'"
check "a pod on node-1 reaches a pod on node-1 (${pod_ip[web1]})" \
  ip netns exec "$tag-client" "$probe" connect tcp "${pod_ip[web1]}" 8080 1000
check "a pod on node-1 reaches a pod on node-2 (${pod_ip[web2]})" \
  ip netns exec "$tag-client" "$probe" connect tcp "${pod_ip[web2]}" 8080 1000

tally=$(ip netns exec "$tag-client" "$probe" tally 10.96.0.10 80 100 1000)
check "the cluster IP spreads over backends on both nodes ($(echo $tally))" \
  bash -c "[ $(count "$tally" web1) -ge 20 ] && [ $(count "$tally" web2) -ge 20 ] && [ $(count "$tally" failed) = 0 ]"
tally=$(ip netns exec "$tag-outside" "$probe" tally 172.18.0.11 30080 60 1000)
check "a NodePort answers a host outside the cluster, from backends on both nodes ($(echo $tally))" \
  bash -c "[ $(count "$tally" web1) -gt 0 ] && [ $(count "$tally" web2) -gt 0 ] && [ $(count "$tally" failed) = 0 ]"
tally=$(ip netns exec "$tag-node2" "$probe" tally 172.18.0.11 30080 30 1000)
check "node-1's NodePort answers node-2 ($(echo $tally))" [ "$(count "$tally" failed)" = 0 ]

# Traffic policies Local: only the receiving node's backends, from outside and from its pods.
tally=$(ip netns exec "$tag-outside" "$probe" tally 172.18.0.12 30081 30 1000)
check "externalTrafficPolicy Local: node-2's NodePort answers only from node-2 ($(echo $tally))" \
  bash -c "[ $(count "$tally" web2) = 30 ] && [ $(count "$tally" web1) = 0 ]"
tally=$(ip netns exec "$tag-client" "$probe" tally 10.96.0.11 80 30 1000)
check "internalTrafficPolicy Local: node-1's pod reaches only node-1's backend ($(echo $tally))" \
  bash -c "[ $(count "$tally" web1) = 30 ] && [ $(count "$tally" web2) = 0 ]"

# A node leaves: its route goes.
g=$(generation 1)
nodes 1 > "$dir/m/nodes.yaml"
check "node-1 commits the change" wait_past 1 "$g"
check "and no longer routes the departed node's subnet" \
  bash -c "! ip -n $tag-node1 route show proto 86 | grep -q 10.244.2.0/24"

echo "cluster: $passed passed, $failed failed"
[ "$failed" = 0 ]
