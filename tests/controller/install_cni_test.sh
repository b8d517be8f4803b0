#!/usr/bin/env bash
# `nftpol install-cni` as the DaemonSet's init container runs it, against nftpol-test-apiserver: it waits while
# the node has no podCIDR, then installs the plugins and the deployed template (deploy/cni-config.yaml) with the
# node's subnets; a pod then attaches with exactly what it installed, as a runtime would. Bad input (a broken
# template, a plugin that is not there, refused credentials, a node that never gets a subnet) fails clearly and
# changes nothing that is installed. All in a network namespace of its own.
set -uo pipefail
nftpol=$1
apiserver=$2
plugin=$3
manifest=$4
probe=$5
source "$(dirname "$0")/../lib/netns.sh"
nftpol_reexec_in_netns "$@"
[ -x /usr/lib/cni/host-local ] || { echo "skipped: no host-local in /usr/lib/cni (containernetworking-plugins)"; exit 77; }
nftpol_pod_test "nftpol-i$$"
ip link set lo up

source "$(dirname "$0")/../lib/apiserver.sh"
nftpol_node_address
nftpol_apiserver "$apiserver"

# The deployed template as the ConfigMap carries it, with host-local's reservations kept in the scratch dir.
sed -n '/10-nftpol.conflist: |/,$p' "$manifest" | tail -n +2 | sed -e 's/^    //' -e "s#/var/lib/cni/networks#$dir/ipam#" \
  > "$dir/10-nftpol.conflist"
grep -q '"type": "nftpol-bridge"' "$dir/10-nftpol.conflist" || { echo "FAIL: no template in $manifest"; exit 1; }
mkdir -p "$dir/net.d" "$dir/bin"
install() {  # install-cni with the test's directories and the given options
  "$nftpol" install-cni --template "$dir/10-nftpol.conflist" --cni-conf-dir "$dir/net.d" --cni-bin-dir "$dir/bin" \
    --plugin "$plugin" --plugin /usr/lib/cni/host-local --cni-socket "$dir/cni.sock" "$@"
}
installed() { find "$dir/net.d" "$dir/bin" -mindepth 1 | sort; }

put nodes '{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1"},"spec":{}}'
install --kubeconfig "$dir/kubeconfig" --node node-1 --wait 20 > "$dir/install.out" 2> "$dir/install.err" &
installer=$!
pids+=($installer)
check "it says it waits for the node's podCIDR" nftpol_wait_for 10 grep -q "Node node-1 has no spec.podCIDR yet" "$dir/install.err"
check "and goes on waiting" nftpol_alive "$installer"
check "and has installed nothing meanwhile" [ -z "$(installed)" ]
put nodes '{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-1"},"spec":{"podCIDR":"10.244.1.0/24","podCIDRs":["10.244.1.0/24","fd00:10:244:1::/64"]}}'
wait "$installer"
check "it installs once the node has subnets" [ $? = 0 ] || cat "$dir/install.err"
conflist=$dir/net.d/10-nftpol.conflist
check "the conflist holds the node's subnets, one range set per family" \
  grep -qF '"ranges":[[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00:10:244:1::/64"}]]' "$conflist"
check "the plugins are installed, executable" test -x "$dir/bin/nftpol-bridge" -a -x "$dir/bin/host-local"
check "exactly those three files, no temporary left" \
  [ "$(installed)" = "$(printf '%s\n' "$dir/bin/host-local" "$dir/bin/nftpol-bridge" "$conflist")" ]
check "the conflist names the controller's socket" grep -qF "\"controllerSocket\":\"$dir/cni.sock\"" "$conflist"
check "the installed plugin answers VERSION" bash -c "CNI_COMMAND=VERSION '$dir/bin/nftpol-bridge' < /dev/null | grep -q 1.1.0"

# A runtime takes the list's one plugin, gives it the list's version and name, and calls it from CNI_PATH.
conf=$(sed -e 's/^.*"plugins":\[{/{"cniVersion":"1.1.0","name":"nftpol",/' -e 's/\]}$//' "$conflist")
ip netns add "$tag-pod"
cni() {
  CNI_COMMAND=$1 CNI_CONTAINERID=pod-1 CNI_NETNS=/var/run/netns/$tag-pod CNI_IFNAME=eth0 CNI_PATH=$dir/bin \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=pod-1;K8S_POD_UID=u-1" "$dir/bin/nftpol-bridge" <<< "$conf"
}
# The plugin hands the pod to the node's controller, which must be there: none yet, and ADD says try again.
cni ADD > "$dir/add.json"
check "without the node's controller ADD fails with code 11" grep -q '"code": 11' "$dir/add.json"
mkdir -p "$dir/m"
echo '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "pod-1", "namespace": "default"}, "spec": {"nodeName": "node-1"}}' \
  > "$dir/m/pod.json"
"$nftpol" controller --manifests "$dir/m" --node node-1 --listen 127.0.0.1:9437 --no-node-routes \
  --cni-socket "$dir/cni.sock" 2> "$dir/controller.log" & pids+=($!)
check "the controller listens on the socket" nftpol_wait_for 10 test -S "$dir/cni.sock"
cni ADD > "$dir/add.json"
check "a pod attaches with what was installed" [ $? = 0 ] || cat "$dir/add.json" "$dir/controller.log"
check "it has an address in each of the node's subnets" bash -c \
  "ip -n '$tag-pod' -o addr show eth0 | grep -q ' 10\.244\.1\.' && ip -n '$tag-pod' -o addr show eth0 | grep -q ' fd00:10:244:1::'"
"$probe" serve 7002 & pids+=($!)
check "a server on the node listens" nftpol_listening "" tcp+udp 7002
check "and reaches a server on the node through its gateway" \
  ip netns exec "$tag-pod" "$probe" connect tcp 10.244.1.1 7002 2000
reservations() { find "$dir/ipam" -type f \( -name '10.244.1.*' -o -name 'fd00:10:244:1:*' \) | wc -l; }
check "host-local holds its two addresses" [ "$(reservations)" = 2 ]
cni DEL > /dev/null
check "DEL releases them" [ "$(reservations)" = 0 ]

# Bad input changes nothing that is installed.
cp "$conflist" "$dir/before"
echo '{"cniVersion": "1.1.0", "name": ' > "$dir/broken.conflist"
"$nftpol" install-cni --template "$dir/broken.conflist" --conf-name 10-nftpol.conflist --cni-conf-dir "$dir/net.d" \
  --pod-cidr 10.244.9.0/24 2> "$dir/broken.err"
check "a template that is not JSON: exit 2" [ $? = 2 ]
check "and the error names the file and the byte" grep -q "broken.conflist: not JSON: at byte" "$dir/broken.err"
install --pod-cidr 10.244.9.0/24 --plugin "$dir/no-such-plugin" 2> "$dir/plugin.err"
check "a plugin that is not there: exit 2" [ $? = 2 ]
check "and the error names it" grep -q "no-such-plugin" "$dir/plugin.err"
start=$(date +%s%N)
install --kubeconfig "$dir/kubeconfig-wrong-token" --node node-1 --wait 20 2> "$dir/token.err"
status=$? took=$((($(date +%s%N) - start) / 1000000))
check "refused credentials fail at once (${took} ms, exit $status), not after --wait" [ $status = 1 -a $took -lt 5000 ] || cat "$dir/token.err"
check "and say HTTP 401" grep -q "HTTP 401" "$dir/token.err"
put nodes '{"apiVersion":"v1","kind":"Node","metadata":{"name":"node-2"},"spec":{}}'
install --kubeconfig "$dir/kubeconfig" --node node-2 --wait 1 2> "$dir/late.err"
check "a node that never gets a subnet: it gives up after --wait" [ $? = 1 ]
check "and says why" grep -q "Node node-2 has no spec.podCIDR yet (gave up after 1 s)" "$dir/late.err"
check "none of it changed the installed conflist" cmp -s "$dir/before" "$conflist"

echo "install-cni: $passed passed, $failed failed"
[ "$failed" = 0 ]
