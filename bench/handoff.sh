#!/usr/bin/env bash
# Protected from the first packet, measured (issue 15): a node whose controller enforces a cluster of PODS pods and
# POLICIES policies (nftpol-gen's, 10k and 2k by default) beside the benchmark's own namespace `app`, where a
# default-deny policy isolates every new pod (label app=new: ingress from nobody, egress to `allowed` on 8080
# only) and `allowed` admits app=new. Three parts:
#
#  1. The window, STARTS pod starts (200) in each of three modes: `open` (as before the handoff: no handoff,
#     the controller does not know the node's pod subnet), `closed` (no handoff, the subnet closed by default)
#     and `handoff` (required, the default). Around every start three probers (`nftpol-probe storm`, a
#     connection every 2 ms) run from before ADD: the new pod to `denied` (which its policy forbids) and to
#     `allowed`, and `denied` to the new pod's address. Without the handoff the pod's status reaches the
#     controller the moment ADD returns (the manifest written then, as a user would); probing goes on until the
#     controller committed it and 300 ms more. Reported per mode: denied connections that got through (and in
#     how many starts), the time from ADD's return to the first attempt to `allowed` that got through, ADD.
#  2. ADD and DEL latency, ROUNDS rounds (100): nftpol-bridge with the handoff, nftpol-bridge without it (no
#     controller, best-effort) and the reference bridge plugin, alternating call by call, median and p90.
#  3. A burst: BURST pods (50) ADDed at once, each probing `denied` from before its ADD and `allowed` right
#     after it: every one protected, and the p99 of ADD.
#
#   bench/handoff.sh [BUILD-DIR]       STARTS=200 ROUNDS=100 BURST=50 PODS=10000 POLICIES=2000
#                                      MODES="open closed handoff" (the window's), KEEP=DIR (keeps the logs; a
#                                      start whose allowed prober never got through keeps its probers' logs)
#
# Runs in a node namespace of its own (`unshare --net`); pods are namespaces nftpol-b<pid>-*; everything goes on
# exit.
set -uo pipefail
build=$(realpath "${1:-build}")
starts=${STARTS:-200} rounds=${ROUNDS:-100} burst=${BURST:-50}
source "$(dirname "$0")/../tests/lib/netns.sh"
nftpol_reexec_in_netns "$@"
[ -x /usr/lib/cni/bridge ] && [ -x /usr/lib/cni/host-local ] || { echo "needs containernetworking-plugins"; exit 1; }
nftpol=$build/cli/nftpol plugin=$build/cni/nftpol-bridge probe=$build/tests/nftpol-probe
nftpol_pod_test "nftpol-b$$"
ip link set lo up
port=9439
sock=$dir/cni.sock
mkdir -p "$dir/m"

# The background cluster, and the benchmark's namespace.
"$build/bench/nftpol-gen" --pods "${PODS:-10000}" --namespaces $(( ${PODS:-10000} / 10 )) --policies "${POLICIES:-2000}" \
  > "$dir/m/cluster.yaml"
cat > "$dir/m/app.json" <<'JSON'
{"apiVersion": "v1", "kind": "List", "items": [
 {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "app"}},
 {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "new-pods", "namespace": "app"},
  "spec": {"podSelector": {"matchLabels": {"app": "new"}}, "policyTypes": ["Ingress", "Egress"],
           "egress": [{"to": [{"podSelector": {"matchLabels": {"app": "allowed"}}}], "ports": [{"port": 8080}]}]}},
 {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "allowed-from-new", "namespace": "app"},
  "spec": {"podSelector": {"matchLabels": {"app": "allowed"}}, "policyTypes": ["Ingress"],
           "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "new"}}}]}]}}]}
JSON
# pod NAME LABEL [ADDRESS]: the pod's object in its own file, with status.podIP once ADDRESS is given.
pod() {
  local status=""
  [ -n "${3:-}" ] && status=', "status": {"phase": "Running", "podIP": "'$3'"}'
  nftpol_write "$dir/m/pod-$1.json" <<< '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "'$1'", "namespace": "app", "uid": "uid-'$1'", "labels": {"app": "'$2'"}}, "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "i"}]}'"$status}"
}

# pods FILE NAME...: pods labelled app=new, without addresses, in one file (one change); returns once the
# controller committed it.
pods() {
  local file=$1 g items=() n
  shift
  for n in "$@"; do
    items+=('{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "'$n'", "namespace": "app", "uid": "uid-'$n'", "labels": {"app": "new"}}, "spec": {"nodeName": "node-1", "containers": [{"name": "c", "image": "i"}]}}')
  done
  g=$(generation)
  (IFS=,; echo '{"apiVersion": "v1", "kind": "List", "items": ['"${items[*]}"']}') | nftpol_write "$dir/m/$file.json"
  nftpol_wait_for 10 past "$g" || { echo "the controller did not take $file"; exit 1; }
}

# conf BRIDGE SUBNET [RANGE-START RANGE-END] HANDOFF: a network config; HANDOFF required (the controller's
# socket) or none (best-effort, no socket).
conf() {
  local range='{"subnet": "'$2'"}' handoff='"controllerSocket": "'$sock'", "policyHandoff": "required"'
  [ $# = 5 ] && range='{"subnet": "'$2'", "rangeStart": "'$3'", "rangeEnd": "'$4'"}'
  [ "${!#}" = none ] && handoff='"controllerSocket": "'$dir'/none.sock", "policyHandoff": "best-effort"'
  echo '{"cniVersion": "1.1.0", "name": "pods", "type": "nftpol-bridge", "bridge": "'$1'", "isDefaultGateway": true,
    '"$handoff"', "ipam": {"type": "host-local", "dataDir": "'$dir'/ipam-'$1'", "ranges": [['"$range"']]}}'
}
# cni COMMAND POD CONF [PLUGIN]: prints the plugin's output; fails as it does.
cni() {
  CNI_COMMAND=$1 CNI_CONTAINERID="c-$2" CNI_NETNS="/var/run/netns/$tag-$2" CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni \
    CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=app;K8S_POD_NAME=$2;K8S_POD_UID=uid-$2" "${4:-$plugin}" <<< "$3"
}
pod_ip() { ip -n "$tag-$1" -4 -o addr show eth0 2>/dev/null | awk '{sub("/.*", "", $4); print $4}'; }
generation() { curl -sf "127.0.0.1:$port/readyz" | sed -n 's/^ready generation=//p'; }
past() { local g; g=$(generation); [ -n "$g" ] && [ "$g" -gt "$1" ]; }
us() { echo "${EPOCHREALTIME/./}"; }
# controller [ARGS]: (re)starts the node's controller; returns once it has committed its first sync.
controller=""
controller() {
  [ -n "$controller" ] && nftpol_stop 10 "$controller"
  "$nftpol" controller --manifests "$dir/m" --node node-1 --listen "127.0.0.1:$port" --no-node-routes "$@" \
    2>> "$dir/controller.log" & controller=$! pids+=($!)
  nftpol_wait_for 60 past 0 || { echo "the controller never synced"; tail "$dir/controller.log"; exit 1; }
}
# stats FILE: "median p90 p99" of the numbers in FILE, microseconds in, milliseconds out.
stats() {
  sort -n "$1" | awk '{a[NR]=$1} END {if (!NR) {print "- - -"; exit}
    i = int(NR * 0.9 + 0.5); j = int(NR * 0.99 + 0.5)
    printf "%.1f %.1f %.1f", a[int((NR + 1) / 2)] / 1000, a[i ? i : 1] / 1000, a[j ? j : 1] / 1000}'
}

# The window's servers, on bridge nbw (10.244.1.0/24, a pool of three: the new pod always gets the one left).
window_conf() { conf nbw 10.244.1.0/24 10.244.1.2 10.244.1.4 "$1"; }
pod allowed allowed
pod denied denied
echo '{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}, "spec": {"podCIDR": "10.244.1.0/24"}}' > "$dir/node.json"
controller --no-cni-socket
for p in allowed denied; do
  ip netns add "$tag-$p"
  cni ADD "$p" "$(window_conf none)" > /dev/null || { echo "ADD $p failed"; exit 1; }
  pod "$p" "$p" "$(pod_ip "$p")"
  ip netns exec "$tag-$p" "$probe" serve 8080 & pids+=($!)
  nftpol_listening "$tag-$p" tcp 8080 || { echo "$p does not serve"; exit 1; }
done
allowed=$(pod_ip allowed) denied=$(pod_ip denied)
for next in 10.244.1.2 10.244.1.3 10.244.1.4; do [ "$next" != "$allowed" ] && [ "$next" != "$denied" ] && break; done

# start MODE I: one pod start; appends "denied-through first-allowed-us add-us" to $dir/MODE.
start() {
  local mode=$1 name=$1-$2 handoff=none g t0 returned
  [ "$mode" = handoff ] && handoff=required
  pod "$name" new
  ip netns add "$tag-$name"
  rm -f "$dir/stop"
  local probers=()
  ip netns exec "$tag-$name" "$probe" storm "$allowed" 8080 2 500 30000 "$dir/stop" > "$dir/to-allowed" & probers+=($!)
  ip netns exec "$tag-$name" "$probe" storm "$denied" 8080 2 500 30000 "$dir/stop" > "$dir/to-denied" & probers+=($!)
  ip netns exec "$tag-denied" "$probe" storm "$next" 8080 2 500 30000 "$dir/stop" > "$dir/from-denied" & probers+=($!)
  nftpol_wait_for 10 test -s "$dir/to-allowed" -a -s "$dir/to-denied" -a -s "$dir/from-denied"
  g=$(generation) t0=$(us)
  cni ADD "$name" "$(window_conf "$handoff")" > "$dir/add.json" || { echo "ADD $name failed: $(cat "$dir/add.json")"; exit 1; }
  returned=$EPOCHREALTIME
  local took=$(( $(us) - t0 ))
  pod "$name" new "$next"  # the kubelet's status.podIP, the moment ADD returned
  nftpol_wait_for 10 past "$g" || { echo "the controller did not take $name"; exit 1; }
  sleep 0.3  # not a wait for anything: probing after the commit
  touch "$dir/stop"
  wait "${probers[@]}"
  local through first
  through=$(cat "$dir/to-denied" "$dir/from-denied" | grep -c ' ok$')
  first=$(awk -v t="$returned" '$1 >= t && $2 == "ok" {print $1}' "$dir/to-allowed" | sort -n | head -1)
  [ -n "$first" ] && first=$(awk -v a="$first" -v b="$returned" 'BEGIN {printf "%d", (a - b) * 1e6}')
  echo "$through ${first:-none} $took" >> "$dir/$mode"
  [ -n "$first" ] || for f in to-allowed to-denied from-denied add.json; do cp "$dir/$f" "$dir/missed-$name.$f"; done
  cni DEL "$name" "$(window_conf "$handoff")" > /dev/null || { echo "DEL $name failed"; exit 1; }
  ip netns del "$tag-$name"
  rm -f "$dir/m/pod-$name.json"
}
window() {  # window MODE: STARTS starts, then the mode's line
  local i
  for i in $(seq "$starts"); do start "$1" "$i"; done
  awk '{print $3}' "$dir/$1" > "$dir/$1.add"
  awk '$2 != "none" {print ($2 < 0 ? 0 : $2)}' "$dir/$1" > "$dir/$1.first"
  read -r am ap _ <<< "$(stats "$dir/$1.add")"
  read -r fm fp _ <<< "$(stats "$dir/$1.first")"
  printf '%-8s %5d starts: %5d denied connections got through (in %d starts); first allowed connection after ADD returned: median %s ms, p90 %s ms (%d starts reached it); ADD median %s ms, p90 %s ms\n' \
    "$1" "$starts" "$(awk '{s += $1} END {print s + 0}' "$dir/$1")" "$(awk '$1 > 0' "$dir/$1" | wc -l)" \
    "$fm" "$fp" "$(wc -l < "$dir/$1.first")" "$am" "$ap"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); background cluster ${PODS:-10000} pods, ${POLICIES:-2000} policies"
echo "== 1. the window: denied connections through a pod start ($starts starts per mode)"
modes=${MODES:-open closed handoff}
[[ " $modes " == *" open "* ]] && window open
cp "$dir/node.json" "$dir/m/node.json"
controller --cni-socket "$sock"
for mode in closed handoff; do [[ " $modes " == *" $mode "* ]] && window "$mode"; done

echo "== 2. ADD and DEL latency over $rounds rounds, ms"
declare -A confs=([handoff]=$(conf nbh 10.244.2.0/24 required) [none]=$(conf nbn 10.244.20.0/24 none)
                  [ref]=$(conf nbr 10.244.21.0/24 none))
declare -A plugins=([handoff]=$plugin [none]=$plugin [ref]=/usr/lib/cni/bridge)
# The reference takes the 1.0.0 it speaks; the rest of the config it ignores.
confs[ref]=${confs[ref]/\"1.1.0\"/\"1.0.0\"}
call() {  # call VARIANT COMMAND NAME
  local t0 t1
  t0=$(us)
  cni "$2" "$3" "${confs[$1]}" "${plugins[$1]}" > "$dir/out" || { echo "$1 $2 $3 failed: $(cat "$dir/out")"; exit 1; }
  t1=$(us)
  echo $((t1 - t0)) >> "$dir/lat-$1-$2"
}
pods warm warm-handoff warm-none warm-ref
for v in handoff none ref; do
  ip netns add "$tag-warm-$v"
  call "$v" ADD "warm-$v" && call "$v" DEL "warm-$v"  # the bridge exists and the binaries are cached before timing
  ip netns del "$tag-warm-$v"
  rm -f "$dir/lat-$v-ADD" "$dir/lat-$v-DEL"
done
for r in $(seq "$rounds"); do
  case $((r % 3)) in 0) order="handoff none ref" ;; 1) order="none ref handoff" ;; *) order="ref handoff none" ;; esac
  pods round handoff-r$r none-r$r ref-r$r  # not timed: the pods' objects exist before their ADD, as with a kubelet
  for v in $order; do ip netns add "$tag-$v-r$r"; done
  for v in $order; do call "$v" ADD "$v-r$r"; done
  for v in $order; do call "$v" DEL "$v-r$r"; done
  for v in $order; do ip netns del "$tag-$v-r$r"; done
done
for c in ADD DEL; do
  read -r hm hp _ <<< "$(stats "$dir/lat-handoff-$c")"
  read -r nm np _ <<< "$(stats "$dir/lat-none-$c")"
  read -r rm rp _ <<< "$(stats "$dir/lat-ref-$c")"
  echo "$c  with the handoff $hm (p90 $hp)  without $nm (p90 $np)  reference bridge $rm (p90 $rp)  handoff +$(awk -v a="$hm" -v b="$nm" 'BEGIN {printf "%.1f", a - b}') ms, ratio to the reference $(awk -v a="$hm" -v b="$rm" 'BEGIN {printf "%.2f", a / b}')"
done
grep 'event=cni-add pod=app/handoff-r' "$dir/controller.log" | sed -n 's/.*duration_ms=\([0-9.]*\).*/\1/p' |
  awk '{printf "%d\n", $1 * 1000}' > "$dir/controller-add"
read -r cm cp _ <<< "$(stats "$dir/controller-add")"
echo "     of the handoff's ADD, the controller's part (request received to answer sent): median $cm ms, p90 $cp ms"
grep -q 'status=programmed' "$dir/controller.log" && ! grep 'event=cni-add' "$dir/controller.log" | grep -qv 'status=programmed' ||
  echo "WARNING: not every ADD was programmed: $(grep 'event=cni-add' "$dir/controller.log" | grep -v status=programmed | head -3)"

echo "== 3. a burst: $burst pods ADDed at once"
pods burst $(seq -f 'burst-%g' "$burst")
for i in $(seq "$burst"); do ip netns add "$tag-burst-$i"; done
rm -f "$dir/stop"
burst_one() {  # burst_one I: ADD, then one attempt to `allowed`; "add-us ok|no" in $dir/added-I
  local t0 took
  t0=$(us)
  cni ADD "burst-$1" "${confs[handoff]}" > "$dir/burst-$1.json" || { echo "ADD burst-$1 failed: $(cat "$dir/burst-$1.json")"; return 1; }
  took=$(( $(us) - t0 ))
  if ip netns exec "$tag-burst-$1" "$probe" connect tcp "$allowed" 8080 2000; then echo "$took ok"; else echo "$took no"; fi > "$dir/added-$1"
}
probers=()
for i in $(seq "$burst"); do
  ip netns exec "$tag-burst-$i" "$probe" storm "$denied" 8080 5 500 30000 "$dir/stop" > "$dir/burst-denied-$i" & probers+=($!)
done
nftpol_wait_for 10 bash -c "for i in \$(seq $burst); do test -s $dir/burst-denied-\$i || exit 1; done"
adders=()
for i in $(seq "$burst"); do burst_one "$i" & adders+=($!); done
wait "${adders[@]}"
sleep 0.3
touch "$dir/stop"
wait "${probers[@]}"
cat "$dir"/added-* | awk '{print $1}' > "$dir/burst.add"
read -r bm bp b99 <<< "$(stats "$dir/burst.add")"
echo "$(wc -l < "$dir/burst.add") of $burst ADDs succeeded: median $bm ms, p90 $bp ms, p99 $b99 ms;" \
  "$(cat "$dir"/burst-denied-* | grep -c ' ok$') of $(cat "$dir"/burst-denied-* | wc -l) attempts to the denied server got through;" \
  "$(cat "$dir"/added-* | grep -c ' ok$') of $burst reached the allowed server at the first attempt after ADD"
[ -n "${KEEP:-}" ] && cp -r "$dir" "$KEEP"  # the logs, to look into
passed=1  # a benchmark, not a test: nftpol_pod_test's frame wants a count
