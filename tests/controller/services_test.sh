#!/usr/bin/env bash
# Service NAT on real packets. A node (a network namespace of its own, via `unshare --net`) whose pods
# (namespaces named nftpol-s<pid>-*) are attached by nftpol-bridge with host-local, as a runtime attaches them;
# the controller enforces a manifests directory of Services, EndpointSlices and policies. Probes are bounded in
# count and time; everything is removed on exit.
set -uo pipefail
nftpol=$1
probe=$2
plugin=$3
source "$(dirname "$0")/../lib/netns.sh"
nftpol_reexec_in_netns "$@"
[ -x /usr/lib/cni/host-local ] || { echo "skipped: containernetworking-plugins (host-local) is not installed"; exit 77; }
nftpol_pod_test "nftpol-s$$"
count() { nftpol_count "$@"; }
generation() { curl -sf localhost:9413/readyz | sed -n 's/^ready generation=//p'; }
past() { local g; g=$(generation); [ -n "$g" ] && [ "$g" -gt "$1" ]; }
wait_past() { nftpol_wait_for 10 past "$1"; }  # until the controller has committed a generation after $1
established() { nftpol_wait_for 5 grep -q '^established' "$1"; }  # the probe writing to file $1 got its first reply
exited() { ! nftpol_alive "$1"; }

ip link set lo up
# A node has a default route, so connections to cluster IPs are forwarded (and meet the rejects of a port
# without backends) rather than refused by routing. Here it leads into a veth pair inside this namespace.
ip link add "nftpd$$" type veth peer name "nftpe$$"
ip addr add 192.168.255.1/24 dev "nftpd$$" && ip link set "nftpd$$" up && ip link set "nftpe$$" up
ip route add default via 192.168.255.254
conf='{"cniVersion": "1.1.0", "name": "svc", "type": "nftpol-bridge", "bridge": "nftps'$$'", "isDefaultGateway": true,
  "hairpinMode": true, "policyHandoff": "best-effort", "controllerSocket": "/nonexistent/cni.sock",
  "ipam": {"type": "host-local", "dataDir": "'$dir'/ipam", "ranges": [[{"subnet": "10.244.1.0/24"}]]}}'
declare -A ip
for pod in client b1 b2 b3; do
  ip netns add "$tag-$pod"
  CNI_COMMAND=ADD CNI_CONTAINERID=$pod CNI_NETNS=/var/run/netns/$tag-$pod CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
    "$plugin" <<< "$conf" > "$dir/$pod.json" || { echo "FAIL: ADD $pod: $(cat "$dir/$pod.json")"; exit 1; }
  ip[$pod]=$(ip -n "$tag-$pod" -4 -o addr show eth0 | awk '{sub("/.*", "", $4); print $4}')
  ip netns exec "$tag-$pod" ip link set lo up
done
for b in b1 b2 b3; do
  NFTPOL_PROBE_NAME=$b ip netns exec "$tag-$b" "$probe" serve 8080 & pids+=($!)
  ip netns exec "$tag-$b" "$probe" echo 9000 & pids+=($!)
done
for b in b1 b2 b3; do check "$b's servers listen" nftpol_listening "$tag-$b" tcp 8080 9000; done

mkdir "$dir/m"
pod() {  # pod NAME LABELS
  echo "- {apiVersion: v1, kind: Pod, metadata: {name: $1, namespace: app, labels: $2}, spec: {nodeName: node-1, containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: echo, containerPort: 9000}]}]}, status: {podIP: ${ip[$1]}}}"
}
endpoints() {  # endpoints POD...: the slice's endpoints list
  local out="" p
  for p in "$@"; do out+="${out:+, }{addresses: [${ip[$p]}], nodeName: node-1, targetRef: {kind: Pod, name: $p}}"; done
  echo "[$out]"
}
slice() {  # slice NAME SERVICE PORTS POD...
  local name=$1 service=$2 ports=$3; shift 3
  cat <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: $name, namespace: app, labels: {kubernetes.io/service-name: $service}}
addressType: IPv4
ports: $ports
endpoints: $(endpoints "$@")
YAML
}
{
  echo "apiVersion: v1"; echo "kind: List"; echo "items:"
  echo "- {apiVersion: v1, kind: Namespace, metadata: {name: app}}"
  pod client "{role: client}"
  for b in b1 b2 b3; do pod $b "{app: web, name: $b}"; done
  echo "- {apiVersion: v1, kind: Service, metadata: {name: web, namespace: app}, spec: {clusterIP: 10.96.0.10, ports: [{name: http, port: 80, targetPort: http}, {name: udp, port: 80, protocol: UDP, targetPort: 8080}]}}"
  echo "- {apiVersion: v1, kind: Service, metadata: {name: echo, namespace: app}, spec: {clusterIP: 10.96.0.11, ports: [{port: 90, targetPort: 9000}]}}"
  echo "- {apiVersion: v1, kind: Service, metadata: {name: echo3, namespace: app}, spec: {clusterIP: 10.96.0.14, ports: [{port: 91, targetPort: 9000}]}}"
  echo "- {apiVersion: v1, kind: Service, metadata: {name: empty, namespace: app}, spec: {clusterIP: 10.96.0.12, ports: [{name: t, port: 80}, {name: u, port: 80, protocol: UDP}]}}"
  echo "- {apiVersion: v1, kind: Service, metadata: {name: sticky, namespace: app}, spec: {clusterIP: 10.96.0.13, sessionAffinity: ClientIP, ports: [{port: 80, targetPort: 8080}]}}"
} > "$dir/m/objects.yaml"
slice web-1 web "[{name: http, port: 8080}, {name: udp, port: 8080, protocol: UDP}]" b1 b2 b3 > "$dir/m/web.yaml"
slice echo-1 echo "[{port: 9000}]" b1 b2 > "$dir/m/echo.yaml"
slice sticky-1 sticky "[{port: 8080}]" b1 b2 b3 > "$dir/m/sticky.yaml"
slice empty-1 empty "[{port: 80}]" > "$dir/m/empty.yaml"
slice echo3-1 echo3 "[{port: 9000}]" b3 > "$dir/m/echo3.yaml"

"$nftpol" controller --manifests "$dir/m" --node node-1 --listen 127.0.0.1:9413 --cni-socket "$dir/cni.sock" 2> "$dir/controller.log" & pids+=($!)
check "the controller commits the services" wait_past 0 || { cat "$dir/controller.log"; exit 1; }
in_client() { ip netns exec "$tag-client" "$probe" "$@"; }

# Random balancing: 300 connections to the cluster IP reach every backend, each at least 20% of them.
tally=$(in_client tally 10.96.0.10 80 300 1000)
echo "$tally" | tr '\n' ' '; echo
for b in b1 b2 b3; do check "$b takes at least 60 of 300 connections" [ "$(count "$tally" $b)" -ge 60 ]; done
check "no connection failed" [ "$(count "$tally" failed)" = 0 ]
check "UDP reaches the service too" in_client connect udp 10.96.0.10 80 1000
check "can-reach agrees: every backend admits the client" \
  "$nftpol" can-reach --cluster "$dir/m" app/client web.app.svc.cluster.local --port 80

# A service without a ready backend refuses at once instead of leaving the client to time out.
start=$(date +%s%N); in_client connect tcp 10.96.0.12 80 3000; code=$?; elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
check "no backend: TCP is refused (exit $code)" [ "$code" = 1 ]
check "no backend: refused within a second (${elapsed} ms)" [ "$elapsed" -lt 1000 ]
start=$(date +%s%N); in_client connect udp 10.96.0.12 80 3000; elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
check "no backend: UDP gets port unreachable within a second (${elapsed} ms)" [ "$elapsed" -lt 1000 ]

# Session affinity: one client, one backend.
tally=$(in_client tally 10.96.0.13 80 30 1000)
check "ClientIP affinity keeps 30 connections on one backend ($(echo $tally))" \
  [ "$(awk '$1 != "failed" && $2 == 30' <<< "$tally" | wc -l)" = 1 ]

# Hairpin: a backend reaching its own service, itself included.
tally=$(ip netns exec "$tag-b1" "$probe" tally 10.96.0.10 80 60 1000)
check "b1 reaches its own service, itself among the backends ($(echo $tally))" \
  bash -c "[ $(count "$tally" failed) = 0 ] && [ $(count "$tally" b1) -gt 0 ]"

# Policy is judged on the backend, after the translation: denying b3 denies the service's connections to it,
# new ones and established ones alike (the conntrack entry is judged by where its replies come from).
in_client hold 10.96.0.14 91 20000 > "$dir/hold-b3" & cut=$!
pids+=($cut)
check "a connection to b3 through its service is established" established "$dir/hold-b3"
g=$(generation)
nftpol_write "$dir/m/deny-b3.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-b3, namespace: app}
spec: {podSelector: {matchLabels: {name: b3}}, policyTypes: [Ingress]}
YAML
check "the policy is committed" wait_past "$g"
tally=$(in_client tally 10.96.0.10 80 90 150)
check "b3 is never reached once a policy denies it ($(echo $tally))" [ "$(count "$tally" b3)" = 0 ]
check "so some connections through the service fail" [ "$(count "$tally" failed)" -gt 0 ]
check "and the others still reach b1 and b2" bash -c "[ $(count "$tally" b1) -gt 0 ] && [ $(count "$tally" b2) -gt 0 ]"
"$nftpol" can-reach --cluster "$dir/m" app/client app/web --port 80 > "$dir/reach.txt"
nftpol_wait_for 5 exited "$cut"
nftpol_stop 1 "$cut"
check "an established connection to b3 through its service is cut ($(tail -1 "$dir/hold-b3"))" \
  [ "${nftpol_status[$cut]}" = 0 ]
check "can-reach agrees: partly allowed, b3 denied" \
  bash -c "grep -q '^PARTLY ALLOWED' $dir/reach.txt && grep -q 'backend app/b3 port 8080: denied' $dir/reach.txt"

# Endpoint changes take effect without dropping established connections.
holds=()
for i in 1 2 3 4; do in_client hold 10.96.0.11 90 20000 > "$dir/echo-hold$i" & holds+=($!); done
pids+=("${holds[@]}")
for i in 1 2 3 4; do check "connection $i to the echo service is established" established "$dir/echo-hold$i"; done
g=$(generation)
slice echo-1 echo "[{port: 9000}]" b1 | nftpol_write "$dir/m/echo.yaml"
check "the echo service's endpoint change is committed" wait_past "$g" || cat "$dir/controller.log"
g=$(generation)
slice web-1 web "[{name: http, port: 8080}, {name: udp, port: 8080, protocol: UDP}]" b1 b2 | nftpol_write "$dir/m/web.yaml"
check "the web service's endpoint change is committed" wait_past "$g" || cat "$dir/controller.log"
# Nothing to poll for when nothing may happen: the connections must outlive the commit by a second (a client
# gives up on a connection that is silent for one).
sleep 1
alive=0
for h in "${holds[@]}"; do nftpol_alive "$h" && alive=$((alive + 1)); done
check "4 established connections survive the endpoint change ($alive alive; $(cat "$dir"/echo-hold* | tr '\n' ' '))" \
  [ "$alive" = 4 ]
nftpol_stop 1 "${holds[@]}"
tally=$(in_client tally 10.96.0.10 80 60 1000)
check "new connections go to the remaining backends only ($(echo $tally))" \
  bash -c "[ $(count "$tally" b3) = 0 ] && [ $(count "$tally" failed) = 0 ]"

echo "services: $passed passed, $failed failed"
[ "$failed" = 0 ]
