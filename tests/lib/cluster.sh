# Shell helpers for a small cluster out of network namespaces: a fabric (a bridge in a namespace of its own),
# nodes on it, pods attached to a node by nftpol-bridge with host-local as a runtime attaches them, and the Node
# objects that tell each node's controller where the others' pod subnets are. Source it after netns.sh and
# nftpol_pod_test (it uses `tag`, `dir`), with `plugin` set to the nftpol-bridge executable.
#
# Node N is the namespace $tag-nodeN at 172.18.0.1N on the fabric, with pod subnet 10.244.N.0/24.

declare -A pod_ip pod_node

# nftpol_fabric: the fabric namespace and its bridge.
nftpol_fabric() {
  ip netns add "$tag-fabric"
  ip -n "$tag-fabric" link add fabric type bridge
  ip -n "$tag-fabric" link set fabric up
}

# nftpol_attach NETNS ADDRESS LEG: a namespace with eth0 at ADDRESS/24 on the fabric (its leg there named LEG).
nftpol_attach() {
  ip netns add "$1"
  ip -n "$tag-fabric" link add "$3" type veth peer name eth0 netns "$1"
  ip -n "$tag-fabric" link set "$3" master fabric up
  ip -n "$1" addr add "$2/24" dev eth0
  ip -n "$1" link set eth0 up
  ip -n "$1" link set lo up
}

# nftpol_node N: node N on the fabric.
nftpol_node() { nftpol_attach "$tag-node$1" "172.18.0.1$1" "node$1"; }

# nftpol_cni_pod NAME NODE [SOCKET]: the pod namespace $tag-NAME attached to node NODE; its address in
# pod_ip[NAME], its network configuration in $dir/NAME.conf (the / as -). NAME is namespace/name (or a name in
# "default"), passed in CNI_ARGS as a runtime passes it. With SOCKET the plugin hands the pod to the controller
# listening there and fails unless it took it (policyHandoff required); without, it goes on without one.
nftpol_cni_pod() {
  local handoff='"controllerSocket": "/nonexistent/cni.sock", "policyHandoff": "best-effort"'
  [ -n "${3:-}" ] && handoff='"controllerSocket": "'$3'", "policyHandoff": "required"'
  local conf='{"cniVersion": "1.1.0", "name": "pods", "type": "nftpol-bridge", "bridge": "cni0", "isDefaultGateway": true,
    "hairpinMode": true, '$handoff', "ipam": {"type": "host-local", "dataDir": "'$dir'/ipam-'$2'", "ranges": [[{"subnet": "10.244.'$2'.0/24"}]]}}'
  local id=${1//\//-} ns=default name=$1
  [[ $1 == */* ]] && { ns=${1%%/*}; name=${1#*/}; }
  ip netns add "$tag-$id"
  ip netns exec "$tag-node$2" env CNI_COMMAND=ADD CNI_CONTAINERID="$id" CNI_NETNS="/var/run/netns/$tag-$id" CNI_IFNAME=eth0 \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=$ns;K8S_POD_NAME=$name;K8S_POD_UID=uid-$id" \
    CNI_PATH=/usr/lib/cni "$plugin" <<< "$conf" > "$dir/$id.json" 2>>"$dir/cni.log" || { echo "FAIL: ADD $1: $(cat "$dir/$id.json")"; exit 1; }
  echo "$conf" > "$dir/$id.conf"  # for a DEL later
  pod_ip[$1]=$(ip -n "$tag-$id" -4 -o addr show eth0 | awk '{sub("/.*", "", $4); print $4}')
  pod_node[$1]=$2
  ip netns exec "$tag-$id" ip link set lo up
}

# nftpol_nodes N...: the Node objects of nodes N..., as a YAML List.
nftpol_nodes() {
  echo "apiVersion: v1"; echo "kind: List"; echo "items:"
  local n
  for n in "$@"; do
    echo "- {apiVersion: v1, kind: Node, metadata: {name: node-$n}, spec: {podCIDR: 10.244.$n.0/24}, status: {addresses: [{type: InternalIP, address: 172.18.0.1$n}]}}"
  done
}

# nftpol_generation N PORT: the generation node N's controller (listening on 127.0.0.1:PORT) has committed.
nftpol_generation() { ip netns exec "$tag-node$1" curl -sf "127.0.0.1:$2/readyz" | sed -n 's/^ready generation=//p'; }

# nftpol_wait_past N PORT GENERATION: waits (bounded, 5 s) until node N's controller committed a later one.
nftpol_wait_past() {
  local g
  for _ in $(seq 100); do
    g=$(nftpol_generation "$1" "$2")
    [ -n "$g" ] && [ "$g" -gt "$3" ] && return 0
    sleep 0.05
  done
  return 1
}
