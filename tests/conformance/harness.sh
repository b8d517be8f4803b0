#!/usr/bin/env bash
# The conformance harness: a virtual cluster that proves the kernel does what the simulator says.
#
#   tests/conformance/harness.sh BUILD-DIR [CASE.yaml...]     (default: every case in tests/conformance/cases/)
#
# It builds the upstream e2e NetworkPolicy model out of network namespaces: namespaces x, y and z (labelled
# ns: x, ...), pods a, b and c in each (labelled pod: a, ...), spread over two nodes joined by a fabric, attached by
# nftpol-bridge with host-local, each serving TCP and UDP on ports 80 and 81 (container ports serve-80-tcp, ...).
# One controller per node enforces the same manifests directory. For each case it writes the case's policies,
# waits until both controllers report the generation that holds them (not a sleep), probes all 81 pod pairs on
# every port and protocol the case names (in parallel, each bounded), and compares with `nftpol matrix` on the
# same manifests. A failure prints the expected, actual and differing truth tables. It ends with
# "N passed, M failed", exits non-zero on any failure and tears everything down, also on failure or interrupt.
#
# A case is a YAML stream of NetworkPolicies (and other objects) with a header naming what to probe:
#   # probe: TCP/80 UDP/81 TCP/80@svc
# `@svc` probes each pod through a ClusterIP service in front of it (s-a in x, ...): policy judges the backend
# after the translation, so the expectation is the same matrix.
# A case of several steps separates them with `# step: what changes` lines; each step is the case's whole state
# at that point (a later step without a policy deletes it), and may name its own probes. `@ip(x/a)` and
# `@node(x/a)` stand for pod x/a's address and node, so a step can relabel a pod (its objects override the
# generated ones).
# SCTP is committed to the kernel like the rest but not probed (this kernel has no SCTP sockets): reported as
# skipped, with the reason.
set -uo pipefail
args=("$@")
build=$(realpath "${1:-build}")
src=$(cd "$(dirname "$0")/../.." && pwd)
nftpol=$build/cli/nftpol probe=$build/tests/nftpol-probe plugin=$build/cni/nftpol-bridge
source "$src/tests/lib/netns.sh"
source "$src/tests/lib/cluster.sh"
nftpol_reexec_in_netns "${args[@]}"
[ -x /usr/lib/cni/host-local ] || { echo "skipped: containernetworking-plugins (host-local) is not installed"; exit 77; }
shift
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=("$src"/tests/conformance/cases/*.yaml)
nftpol_pod_test "nftpol-k$$"
port=9415

ip link set lo up
nftpol_fabric
nftpol_node 1
nftpol_node 2
pods=()
for ns in x y z; do
  for p in a b c; do
    pods+=("$ns/$p")
    # Spread over both nodes so that every case crosses nodes as well as bridges.
    n=$(( (${#pods[@]} % 2) + 1 ))
    nftpol_cni_pod "$ns/$p" "$n"
    ip netns exec "$tag-$ns-$p" "$probe" serve 80 81 & pids+=($!)
  done
done

mkdir "$dir/m"
declare -A svc_ip
nftpol_nodes 1 2 > "$dir/m/nodes.yaml"
{
  echo "apiVersion: v1"; echo "kind: List"; echo "items:"
  for ns in x y z; do echo "- {apiVersion: v1, kind: Namespace, metadata: {name: $ns, labels: {ns: $ns}}}"; done
  for pod in "${pods[@]}"; do
    echo "- {apiVersion: v1, kind: Pod, metadata: {name: ${pod#*/}, namespace: ${pod%/*}, labels: {pod: ${pod#*/}}}, spec: {nodeName: node-${pod_node[$pod]}, containers: [{name: c, ports: [{name: serve-80-tcp, containerPort: 80}, {name: serve-80-udp, containerPort: 80, protocol: UDP}, {name: serve-81-tcp, containerPort: 81}, {name: serve-81-udp, containerPort: 81, protocol: UDP}]}]}, status: {podIP: ${pod_ip[$pod]}}}"
  done
  # A ClusterIP service in front of every pod (s-a in x, ...), so that a case can probe through the translation.
  i=0
  for pod in "${pods[@]}"; do
    i=$((i + 1))
    svc_ip[$pod]=10.96.0.$((100 + i))
    echo "- {apiVersion: v1, kind: Service, metadata: {name: s-${pod#*/}, namespace: ${pod%/*}}, spec: {clusterIP: ${svc_ip[$pod]}, ports: [{name: t80, port: 80}, {name: u80, port: 80, protocol: UDP}, {name: t81, port: 81}, {name: u81, port: 81, protocol: UDP}]}}"
    echo "- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, metadata: {name: s-${pod#*/}-1, namespace: ${pod%/*}, labels: {kubernetes.io/service-name: s-${pod#*/}}}, addressType: IPv4, ports: [{name: t80, port: 80}, {name: u80, port: 80, protocol: UDP}, {name: t81, port: 81}, {name: u81, port: 81, protocol: UDP}], endpoints: [{addresses: [${pod_ip[$pod]}], nodeName: node-${pod_node[$pod]}}]}"
  done
} > "$dir/m/pods.yaml"
for n in 1 2; do
  ip netns exec "$tag-node$n" "$nftpol" controller --manifests "$dir/m" --node "node-$n" --listen "127.0.0.1:$port" \
    2> "$dir/controller-$n.log" & pids+=($!)
done
for n in 1 2; do
  nftpol_wait_past "$n" "$port" 0 || { echo "node-$n's controller never synced:"; cat "$dir/controller-$n.log"; exit 1; }
done
sleep 0.2  # the servers listen

# expected PORT PROTOCOL: "from to ." or "from to X" per pair, from `nftpol matrix` on the manifests.
expected() {
  local json row=0
  json=$("$nftpol" matrix --cluster "$dir/m" --port "$1" --protocol "$2" --output json) || return 1
  local names; read -r -a names <<< "$(sed 's/^{"pods":\[//; s/\],"matrix".*//; s/"//g; s/,/ /g' <<< "$json")"
  sed 's/.*"matrix":\[\[//; s/\]\]}$//; s/\],\[/\n/g' <<< "$json" | while IFS=, read -r -a cells; do
    for i in "${!cells[@]}"; do echo "${names[$row]} ${names[$i]} $([ "${cells[$i]}" = true ] && echo . || echo X)"; done
    row=$((row + 1))
  done
}
# actual PORT PROTOCOL [svc]: the same, from a probe of every pair on real packets, all in parallel; with `svc`
# each pod is reached through its ClusterIP service instead of its own address.
actual() {
  local proto=${2,,} from to running=() target
  rm -rf "$dir/probes" && mkdir "$dir/probes"
  for from in "${pods[@]}"; do
    for to in "${pods[@]}"; do
      target=${pod_ip[$to]}
      [ "${3:-}" = svc ] && target=${svc_ip[$to]}
      ( if ip netns exec "$tag-${from/\//-}" "$probe" connect "$proto" "$target" "$1" 400; then r=.; else r=X; fi
        echo "$from $to $r" > "$dir/probes/${from/\//-}_${to/\//-}" ) & running+=($!)
    done
  done
  wait "${running[@]}"
  cat "$dir"/probes/* | sort
}
# table TRIPLES: the truth table, the way the upstream suite prints it.
table() {
  awk -v pods="${pods[*]}" '
    { cell[$1 " " $2] = $3 }
    END {
      n = split(pods, p, " ")
      printf "%-5s", ""; for (j = 1; j <= n; j++) printf " %-4s", p[j]; printf "\n"
      for (i = 1; i <= n; i++) {
        printf "%-5s", p[i]
        for (j = 1; j <= n; j++) printf " %-4s", (p[i] " " p[j]) in cell ? cell[p[i] " " p[j]] : "?"
        printf "\n"
      }
    }' <<< "$1"
}

# steps CASE: the case's steps, one file each in $dir/steps/, in order (a case without markers is one step).
steps() {
  rm -rf "$dir/steps" && mkdir "$dir/steps"
  awk -v out="$dir/steps/" '
    /^# step: / { n++; file = sprintf("%s%03d.yaml", out, n); print "# probe: " probe > file; print > file; next }
    /^# probe: / && n == 0 { probe = substr($0, 10) }
    { if (n == 0) head = head $0 "\n"; else print > file }
    END { if (n == 0) { printf "%s", head > (out "001.yaml") } }' "$1"
  local f pod
  for f in "$dir"/steps/*.yaml; do
    for pod in "${pods[@]}"; do sed -i "s#@ip($pod)#${pod_ip[$pod]}#g; s#@node($pod)#node-${pod_node[$pod]}#g" "$f"; done
  done
  ls "$dir"/steps/*.yaml
}

passed=0 failed=0 skipped=0
enforce=()  # milliseconds from a case's write to both controllers' commit
start=$(date +%s%N)
for case in "${cases[@]}"; do
 for step in $(steps "$case"); do
  name=$(basename "$case" .yaml)
  what=$(sed -n 's/^# step: //p' "$step" | head -1)
  [ -n "$what" ] && name="$name [$what]"
  probes=$(sed -n 's/^# probe: //p' "$step" | tail -1)
  g1=$(nftpol_generation 1 "$port") g2=$(nftpol_generation 2 "$port")
  # Renamed into place: the controllers see the whole step in one change. Named to sort after the generated
  # objects, so that a step's pods override them.
  written=$(date +%s%N)
  cp "$step" "$dir/case.tmp" && mv "$dir/case.tmp" "$dir/m/zz-case.yaml"
  if ! nftpol_wait_past 1 "$port" "$g1" || ! nftpol_wait_past 2 "$port" "$g2"; then
    echo "FAIL: $name: the controllers did not commit it"; cat "$dir"/controller-*.log | tail -5
    failed=$((failed + 1)); continue
  fi
  enforce+=($(( ($(date +%s%N) - written) / 1000000 )))
  for spec in $probes; do
    if [ "${spec%/*}" = SCTP ]; then
      # The controllers committed the case, so the kernel accepted its SCTP rules; probing needs SCTP sockets.
      skipped=$((skipped + 1)); echo "skipped: $name $spec (this kernel has no SCTP sockets; its rules were committed)"
      continue
    fi
    # TCP/80@svc: through each pod's service; policy judges the backend, so the expectation is the same matrix.
    via=${spec#*@}; [ "$via" = "$spec" ] && via=""
    spec=${spec%@*}
    want=$(expected "${spec#*/}" "${spec%/*}" | sort) || { echo "FAIL: $name: nftpol matrix refused the case"; failed=$((failed + 1)); continue; }
    got=$(actual "${spec#*/}" "${spec%/*}" "$via")
    spec+=${via:+@$via}
    if [ "$want" = "$got" ]; then
      passed=$((passed + 1)); echo "ok: $name $spec"
    else
      failed=$((failed + 1)); echo "FAIL: $name $spec"
      echo "expected:"; table "$want"
      echo "observed:"; table "$got"
      echo "comparison (. agree, X differ):"
      table "$(join -j 1 <(awk '{print $1"_"$2, $3}' <<< "$want" | sort) <(awk '{print $1"_"$2, $3}' <<< "$got" | sort) |
        awk '{split($1, k, "_"); print k[1], k[2], ($2 == $3 ? "." : "X")}')"
    fi
  done
 done
 rm -f "$dir/m/zz-case.yaml"  # the next case starts from the generated objects alone
done
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
read -r median p99 <<< "$(printf '%s\n' "${enforce[@]}" | sort -n |
  awk '{a[NR] = $1} END {i = int(NR * 0.99 + 0.5); if (i < 1) i = 1; print a[int((NR + 1) / 2)], a[i]}')"
echo "time to enforce (write to both controllers' commit): median ${median} ms, p99 ${p99} ms over ${#enforce[@]} steps; cases took ${elapsed} ms"
echo "conformance: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
