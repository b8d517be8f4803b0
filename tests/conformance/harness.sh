#!/usr/bin/env bash
# The conformance harness: a virtual cluster that proves the kernel does what the simulator says, and the
# simulator what upstream says.
#
#   tests/conformance/harness.sh BUILD-DIR [CASE.yaml|DIRECTORY|gen:SEED:COUNT...]
#
# (default: tests/conformance/cases/, the upstream set; gen:SEED:COUNT adds COUNT cases generate.sh draws from
# SEED.)
#
# It builds a model out of network namespaces, by default the upstream e2e NetworkPolicy model (namespaces x, y
# and z, pods a, b and c in each: model_np below; or network-policy-api's houses, model_houses), its pods
# spread over two nodes joined by a fabric, attached by nftpol-bridge with host-local, each serving TCP and UDP
# on the model's ports.
# One controller per node enforces the same manifests directory; it starts before the pods, and every pod is
# attached with the handoff required (its ADD returns once its node enforces its policies), so every case also
# runs on pods that were never open. For each step of each case it writes the step's
# objects (one rename), probes one pair that the step changes until it shows the change (the time to enforce),
# waits until both controllers report a generation past the write (not a sleep), probes every pod pair on every
# port and protocol the case names (in parallel, each bounded) and compares them with `nftpol matrix` on the same
# manifests, and compares `nftpol matrix` with the case's own expectations, written from the upstream test.
# A failure prints the expected, observed and differing truth tables. It ends with "N passed, M failed",
# exits non-zero on any failure and tears everything down, also on failure or interrupt.
#
# A case is a YAML stream of NetworkPolicies (and other objects) with comment lines that say what to do:
#   # probe: TCP/80 UDP/81 TCP/80@svc      what to probe; @svc goes through a ClusterIP service in front of each
#                                         pod (s-a in x, ...): policy judges the backend after the translation
#   # expect: FROM TO ./X                 the expected truth table: all allowed, then each line in order sets
#   # expect TCP/81: FROM TO ./X          the pairs it matches (FROM and TO are globs: *, x/*, */a, x/a), for
#                                         every probe or just one. Pairs of a pod with itself are not judged
#                                         (upstream's ignoreLoopback). A case without expect lines is checked
#                                         against the simulator alone (the generated ones).
#   # step: WHAT                          starts a step; each step is the case's whole state at that point (a
#                                         later step without a policy deletes it) and may name its own probes
#   # recreate: x/b                       (in a step) deletes the pod through the CNI plugin and adds it again,
#                                         with the next address host-local hands out
#   # poke: FROM TO TCP/80 X              (in a step) one pair on one port, as upstream's PokeServer judges it:
#                                         a step with pokes is judged on the pairs they name only (the kernel
#                                         still on every pair, against the simulator)
#   # sentinel: FROM TO                   (in a step) the pair whose change times enforcement; by default the
#                                         first pair whose expected result the step changes
#   # model: houses                       the model the case is written against (see model_np, model_houses;
#                                         np by default); all cases of a run share one
# `@ip(x/a)` and `@node(x/a)` stand for pod x/a's address and node, so a step can relabel a pod (its objects
# override the generated ones). SCTP is rendered, checked by the kernel (`nft -c`) and against the case's
# expectations, but not probed (this kernel has no SCTP sockets): reported as skipped, with the reason.
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
nftpol_pod_test "nftpol-k$$"
cases=()
for arg in "${@:-$src/tests/conformance/cases}"; do
  case $arg in
    gen:*:*) IFS=: read -r _ seed count <<< "$arg"
             "$src/tests/conformance/generate.sh" "$seed" "$count" "$dir/gen-$seed" > /dev/null || exit 1
             cases+=("$dir/gen-$seed"/*.yaml) ;;
    *) if [ -d "$arg" ]; then cases+=("$arg"/*.yaml); else cases+=("$arg"); fi ;;
  esac
done
port=9415

# The model the cases are written against, from their `# model:` line: np (the default), the upstream
# NetworkPolicy e2e model; houses, network-policy-api's ClusterNetworkPolicy conformance model. Every case of a
# run must name the same one.
model=$(sed -n 's/^# model: //p' "${cases[0]}" | head -1)
model=${model:-np}
for case in "${cases[@]}"; do
  m=$(sed -n 's/^# model: //p' "$case" | head -1)
  [ "${m:-np}" = "$model" ] || { echo "FAIL: $(basename "$case") is written for model ${m:-np}, the first case for $model"; exit 1; }
done
declare -A ns_labels pod_labels svc_ip
pods=()
# model_np: namespaces x, y and z (labelled ns: x, ...), pods a, b and c in each (labelled pod: a, ...), each
# serving TCP and UDP on ports 80 and 81 (container ports serve-80-tcp, ...), and a ClusterIP service in front
# of each pod (s-a in x, ...).
model_np() {
  namespaces=(x y z) serve=(80 81) services=yes
  local ns p
  for ns in x y z; do
    ns_labels[$ns]="ns: $ns"
    for p in a b c; do pods+=("$ns/$p") pod_labels[$ns/$p]="pod: $p"; done
  done
  container_ports="{name: serve-80-tcp, containerPort: 80}, {name: serve-80-udp, containerPort: 80, protocol: UDP}, {name: serve-81-tcp, containerPort: 81}, {name: serve-81-udp, containerPort: 81, protocol: UDP}"
}
# model_houses: conformance/base/manifests.yaml of kubernetes-sigs/network-policy-api: four houses, each a
# namespace network-policy-conformance-HOUSE labelled conformance-house: HOUSE, with a StatefulSet of two pods
# (harry-potter-0 and -1 in gryffindor, draco-malfoy in slytherin, cedric-diggory in hufflepuff, luna-lovegood
# in ravenclaw) labelled as its template and as the StatefulSet controller labels them; each serves TCP 80
# (container port web) and 8080, UDP 53 (dns) and 5353 (here TCP and UDP on all four). SCTP 9003 and 9005 are
# rendered and checked, not probed. The host-network forbidden-forrest is left out: it has no pods' addresses.
model_houses() {
  namespaces=() serve=(80 8080 53 5353) services=no
  local house set i ns
  for house in gryffindor:harry-potter slytherin:draco-malfoy hufflepuff:cedric-diggory ravenclaw:luna-lovegood; do
    ns=network-policy-conformance-${house%%:*} set=${house#*:}
    namespaces+=("$ns") ns_labels[$ns]="conformance-house: ${house%%:*}"
    for i in 0 1; do
      pods+=("$ns/$set-$i")
      pod_labels[$ns/$set-$i]="conformance-house: ${house%%:*}, statefulset.kubernetes.io/pod-name: $set-$i, apps.kubernetes.io/pod-index: '$i'"
    done
  done
  container_ports="{name: web, containerPort: 80}, {name: dns, containerPort: 53, protocol: UDP}"
}
case $model in
  np|houses) "model_$model" ;;
  *) echo "FAIL: no model $model (np, houses)"; exit 1 ;;
esac
ip link set lo up
nftpol_fabric
nftpol_node 1
nftpol_node 2
declare -A server
n=0
for pod in "${pods[@]}"; do
  # Spread over both nodes so that every case crosses nodes as well as bridges.
  n=$((n + 1))
  pod_node[$pod]=$(( (n % 2) + 1 ))
  svc_ip[$pod]=10.96.0.$((100 + n))
done

mkdir "$dir/m"
nftpol_nodes 1 2 > "$dir/m/nodes.yaml"
# The generated objects: namespaces, pods (with the addresses the CNI gave them, once it has), and a service in
# front of each pod that has one.
write_pods() {
  {
    echo "apiVersion: v1"; echo "kind: List"; echo "items:"
    for ns in "${namespaces[@]}"; do echo "- {apiVersion: v1, kind: Namespace, metadata: {name: $ns, labels: {${ns_labels[$ns]}}}}"; done
    for pod in "${pods[@]}"; do
      status=""
      [ -n "${pod_ip[$pod]:-}" ] && status=", status: {podIP: ${pod_ip[$pod]}}"
      echo "- {apiVersion: v1, kind: Pod, metadata: {name: ${pod#*/}, namespace: ${pod%/*}, labels: {${pod_labels[$pod]}}}, spec: {nodeName: node-${pod_node[$pod]}, containers: [{name: c, ports: [$container_ports]}]}$status}"
    done
    [ "$services" = yes ] || return 0
    # A ClusterIP service in front of every pod (s-a in x, ...), so that a case can probe through the translation.
    for pod in "${pods[@]}"; do
      [ -n "${pod_ip[$pod]:-}" ] || continue
      echo "- {apiVersion: v1, kind: Service, metadata: {name: s-${pod#*/}, namespace: ${pod%/*}}, spec: {clusterIP: ${svc_ip[$pod]}, ports: [{name: t80, port: 80}, {name: u80, port: 80, protocol: UDP}, {name: t81, port: 81}, {name: u81, port: 81, protocol: UDP}]}}"
      echo "- {apiVersion: discovery.k8s.io/v1, kind: EndpointSlice, metadata: {name: s-${pod#*/}-1, namespace: ${pod%/*}, labels: {kubernetes.io/service-name: s-${pod#*/}}}, addressType: IPv4, ports: [{name: t80, port: 80}, {name: u80, port: 80, protocol: UDP}, {name: t81, port: 81}, {name: u81, port: 81, protocol: UDP}], endpoints: [{addresses: [${pod_ip[$pod]}], nodeName: node-${pod_node[$pod]}}]}"
    done
  }
}
# The controllers start first, as in a node's boot order: the pod objects exist without addresses, and every
# pod is attached with the handoff required, so no pod of any case ever ran unprotected (the plugin's ADD
# returns only once the pod's node enforces its policies).
write_pods > "$dir/m/pods.yaml"
for n in 1 2; do
  ip netns exec "$tag-node$n" "$nftpol" controller --manifests "$dir/m" --node "node-$n" --listen "127.0.0.1:$port" --cni-socket "$dir/cni-$n.sock" \
    --flow-log "$dir/flows-$n.jsonl" --flow-log-allowed --flow-log-flush 0.2 2> "$dir/controller-$n.log" & pids+=($!)
done
for n in 1 2; do
  nftpol_wait_past "$n" "$port" 0 || { echo "node-$n's controller never synced:"; cat "$dir/controller-$n.log"; exit 1; }
done
for pod in "${pods[@]}"; do
  nftpol_cni_pod "$pod" "${pod_node[$pod]}" "$dir/cni-${pod_node[$pod]}.sock"
  ip netns exec "$tag-${pod/\//-}" "$probe" serve "${serve[@]}" & pids+=($!) server[$pod]=$!
done
grep -h 'event=cni-add' "$dir"/controller-*.log | grep -qv 'status=programmed' &&
  { echo "FAIL: a pod was attached before its node enforced its policies:"; grep -h 'event=cni-add' "$dir"/controller-*.log; exit 1; }
# Then the kubelet's part: the pods' addresses (and the services' endpoints) reach the other node too.
g1=$(nftpol_generation 1 "$port") g2=$(nftpol_generation 2 "$port")
nftpol_write "$dir/m/pods.yaml" < <(write_pods)
nftpol_wait_past 1 "$port" "$g1" && nftpol_wait_past 2 "$port" "$g2" ||
  { echo "FAIL: the controllers did not take the pods' addresses"; exit 1; }
for id in "${!server[@]}"; do
  nftpol_listening "$tag-${id/\//-}" tcp+udp "${serve[@]}" || { echo "FAIL: the servers of $id do not listen"; exit 1; }
done

# expected DIR PORT PROTOCOL [--audit-as-enforced]: "from to ." or "from to X" per pair, from `nftpol matrix` on
# the manifests in DIR.
expected() {
  local json row=0
  json=$("$nftpol" matrix --cluster "$1" --port "$2" --protocol "$3" --output json ${4:-}) || return 1
  local names; read -r -a names <<< "$(sed 's/^{"pods":\[//; s/\],"matrix".*//; s/"//g; s/,/ /g' <<< "$json")"
  sed 's/.*"matrix":\[\[//; s/\]\]}$//; s/\],\[/\n/g' <<< "$json" | while IFS=, read -r -a cells; do
    for i in "${!cells[@]}"; do echo "${names[$row]} ${names[$i]} $([ "${cells[$i]}" = true ] && echo . || echo X)"; done
    row=$((row + 1))
  done | sort
}
# upstream STEP SPEC: the same from the step's `# expect` lines, pairs of a pod with itself left out; or, in a
# step with `# poke` lines, only the pairs they name. Fails when the step judges nothing on SPEC.
upstream() {
  local rules judged=all from to r f t v
  rules=$(sed -n "s|^# expect: ||p; s|^# expect $2: ||p" "$1")
  if grep -q '^# poke: ' "$1"; then
    judged=poked rules=$(sed -n "s|^# poke: \([^ ]*\) \([^ ]*\) $2 \([.X]\)\$|\1 \2 \3|p" "$1")
  fi
  [ -n "$rules" ] || return 1
  for from in "${pods[@]}"; do
    for to in "${pods[@]}"; do
      [ "$from" = "$to" ] && continue
      r=.; [ "$judged" = poked ] && r=""
      while read -r f t v; do
        # shellcheck disable=SC2053  # the patterns are globs
        [[ $from == $f && $to == $t ]] && r=$v
      done <<< "$rules"
      [ -n "$r" ] && echo "$from $to $r"
    done
  done | sort
}
# probe FROM ADDRESS PROTOCOL PORT TIMEOUT_MS [SOURCE_PORT]: "." when the reply came, "X" when it did not, "E"
# when the probe could not even send (which then differs from either expectation, and says why on stderr).
probe_pair() {
  ip netns exec "$tag-${1/\//-}" "$probe" connect "${3,,}" "$2" "$4" "$5" ${6:-}
  case $? in 0) echo . ;; 1) echo X ;; *) echo E ;; esac
}
# Each round of probes sends from a source port of its own (UDP only): a UDP probe that reused a tuple of an
# earlier round's still-live conntrack entry would join that flow rather than open a connection, and the flow
# log, which records new connections, would rightly have no record of it.
round=0
# actual PORT PROTOCOL [svc]: the same, from a probe of every pair on real packets, all in parallel; with `svc`
# each pod is reached through its ClusterIP service instead of its own address.
actual() {
  local from to running=() target sport=""
  rm -rf "$dir/probes" && mkdir "$dir/probes"
  [ "$2" = UDP ] && sport=$((20000 + round))  # below the ephemeral range: no other probe takes it
  for from in "${pods[@]}"; do
    for to in "${pods[@]}"; do
      target=${pod_ip[$to]}
      [ "${3:-}" = svc ] && target=${svc_ip[$to]}
      ( echo "$from $to $(probe_pair "$from" "$target" "$2" "$1" 400 $sport)" > "$dir/probes/${from/\//-}_${to/\//-}" ) &
      running+=($!)
    done
  done
  wait "${running[@]}"
  cat "$dir"/probes/* | sort
}
# The flow log: every probe must show in the nodes' logs as the probe saw it, in the model's words.
# flow_mark: how many whole lines each node's log has now; flow_new reads the whole lines written after them.
# Lines, not bytes: the controller's writes reach the file in pieces that need not end at a line, and a mark or
# a read inside a line would hand jq half a record, which ends its input there.
flow_mark() { flow_lines=(); for n in 1 2; do flow_lines[$n]=$(wc -l < "$dir/flows-$n.jsonl" 2>/dev/null || echo 0); done; }
flow_new() {
  local n whole
  for n in 1 2; do
    whole=$(wc -l < "$dir/flows-$n.jsonl" 2>/dev/null || echo 0)  # first: a line counted is a line ended
    [ "$whole" -gt "${flow_lines[$n]}" ] && sed -n "$((flow_lines[$n] + 1)),${whole}p" "$dir/flows-$n.jsonl"
  done
  return 0
}
# flow_records SINCE PROTOCOL PORT: "source destination verdict side agreement service node" per record of
# PROTOCOL/PORT whose last packet came at SINCE or later.
flow_records() {
  flow_new | jq -r --arg since "$1" --arg proto "$2" --argjson port "$3" '
      select(.lastSeen >= $since and .protocol == $proto and .destination.port == $port) |
      [.source.ip, .destination.ip, .verdict, (.side // "-"), (if .modelDisagrees then "disagrees" else "agrees" end),
       (.destination.service // "-"), .node] | join(" ")'
}
# flow_check NAME SINCE PROTOCOL PORT PROBED VIA: every pair of PROBED ("from to ." or "X" lines; a pod and
# itself aside: that never leaves the pod) has records since SINCE. A denied probe has a denied record; any
# allowed record of it is its source node's egress (a connection that leaves a node is allowed out there, and
# its destination's node decides). An allowed probe has allowed records only. None disagrees with the model, and
# through a service the source node's record names the service.
flow_check() {
  local name=$1 since=$2 protocol=$3 port=$4 probed want records missing verdicts _
  want=$(while read -r from to result; do
    [ "$from" = "$to" ] ||
      echo "${pod_ip[$from]} ${pod_ip[$to]} $result node-${pod_node[$from]} $from $to node-${pod_node[$to]}"
  done <<< "$5")
  # Every record a probe makes, on each node it reached, before judging: a denied probe's denied record, and an
  # allowed probe's records on both its nodes (each node flushes on its own clock; an audit chain's would-deny
  # comes with the destination node's).
  for _ in $(seq 40); do  # 4 s at most; the controllers flush every 0.2 s
    records=$(flow_records "$since" "$3" "$4")
    missing=$(awk 'NR == FNR { at[$1 " " $2 " " $7] = 1; if ($3 == "denied") denied[$1 " " $2] = 1; next }
      $3 == "X" && !(($1 " " $2) in denied) { print $5 " -> " $6 " (no denied record)" }
      $3 == "." && !(($1 " " $2 " " $4) in at) { print $5 " -> " $6 " (no record on " $4 ")" }
      $3 == "." && !(($1 " " $2 " " $7) in at) { print $5 " -> " $6 " (no record on " $7 ")" }' \
      <(echo "$records") <(echo "$want"))
    [ -z "$missing" ] && break
    sleep 0.1
  done
  if [ -n "$missing" ]; then
    failed=$((failed + 1)); echo "FAIL: $name: probes with no flow log record since $since:"; head -5 <<< "$missing"
    # What each node says it could not record, and every record of the first missing pair, at any time.
    for n in 1 2; do
      echo "node-$n: $(ip netns exec "$tag-node$n" curl -sf "127.0.0.1:$port/metrics" |
        grep '^nftpol_flow_log_lost_total' | tr '\n' ' ')"
    done
    set -- $(head -1 <<< "$missing")
    flow_lines=(0 0 0); flow_new | jq -c --arg s "${pod_ip[$1]}" --arg d "${pod_ip[$3]}" \
      'select(.source.ip == $s and .destination.ip == $d) | [.node, .verdict, .protocol, .destination.port, .firstSeen, .lastSeen]' | tail -5
    return
  fi
  verdicts=$(awk -v via="$6" '
    NR == FNR { key = $1 " " $2; n[key]++; v[key] = v[key] " " $3 "/" $4; if ($5 != "agrees") odd[key] = 1
                node[key] = node[key] " " $7 ":" $6; next }
    {
      key = $1 " " $2; bad = ""
      if (odd[key]) bad = "a record disagrees with the model"
      else if ($3 == "." && v[key] ~ /denied/) bad = "allowed, but a record says denied"
      else if ($3 == "X" && v[key] !~ /denied/) bad = "denied, but no record says so"
      else if ($3 == "X" && v[key] ~ / allowed\/(ingress|-)/) bad = "denied, but a record says its ingress allowed it"
      else if (via == "svc" && index(node[key], " " $4 ":-")) bad = "through a service, but its node'"'"'s record names none"
      if (bad != "") print $5 " -> " $6 ": " bad " (records:" v[key] ")"
    }' <(echo "$records") <(echo "$want"))
  # The first denied pair's record names the side, the tier that decided, the isolating policies and the cluster
  # policy rules that matched, as can-reach names them.
  local denied record mine theirs would=
  denied=$(awk '$3 == "X" {print $5, $6, $1, $2; exit}' <<< "$want")
  if [ -z "$verdicts" ] && [ -n "$denied" ]; then
    set -- $denied "$3" "$4"
    record=$(flow_new | jq -c --arg s "$3" --arg d "$4" --arg p "$5" --argjson port "$6" --arg since "$since" \
        'select(.source.ip == $s and .destination.ip == $d and .protocol == $p and .destination.port == $port
                and .verdict == "denied" and .lastSeen >= $since)' | tail -1)
    mine=$(jq -c '.[.side] as $v | {side, decidedBy: $v.decidedBy, policies: ($v.isolatedBy // []),
                  tier: (($v.admin // $v.baseline) | if . then .policy + " " + .rule + " " + .action else null end)}' <<< "$record")
    theirs=$("$nftpol" can-reach --cluster "$dir/m" "$1" "$2" --protocol "$5" --port "$6" --output json |
      jq -c '.verdicts[0] | (if (.egress.applies and (.egress.allowed | not)) then "egress" else "ingress" end) as $s
             | .[$s] as $v | {side: $s, decidedBy: $v.decidedBy, policies: $v.policies,
                              tier: (($v.admin // $v.baseline) | if . then .policy + " " + .rule + " " + .action else null end)}')
    [ "$mine" = "$theirs" ] || verdicts="$1 -> $2: the record says $mine, can-reach $theirs"
  fi
  # Audit mode: the would-deny records are exactly the pairs that the enforced policies allow and that
  # `nftpol matrix --audit-as-enforced` denies.
  if [ -z "$verdicts" ] && grep -q 'nftpol.io/mode: audit' "$dir/m/zz-case.yaml" 2>/dev/null; then
    local audited
    would=$(awk '$3 == "would-deny" {print $1, $2}' <<< "$records" | sort -u)
    audited=$(join -j 1 <(expected "$dir/m" "$port" "$protocol" | awk '$1 != $2 {print $1"_"$2, $3}') \
      <(expected "$dir/m" "$port" "$protocol" --audit-as-enforced | awk '$1 != $2 {print $1"_"$2, $3}') |
      awk '$2 == "." && $3 == "X" {split($1, k, "_"); print k[1], k[2]}' |
      while read -r from to; do echo "${pod_ip[$from]} ${pod_ip[$to]}"; done | sort -u)
    if [ "$would" != "$audited" ]; then
      verdicts="would-deny records ($(wc -l <<< "$would")) are not the pairs --audit-as-enforced denies ($(wc -l <<< "$audited")):
$(diff <(echo "$would") <(echo "$audited") | head -5)"
    elif [ -z "$would" ]; then
      verdicts="an audit case with no would-deny record"
    fi
  fi
  if [ -n "$verdicts" ]; then
    failed=$((failed + 1)); echo "FAIL: $name: the flow log disagrees with the probes:"; head -5 <<< "$verdicts"
  else
    passed=$((passed + 1)); echo "ok: $name: the flow log has every probe as it went${would:+ (and $(wc -l <<< "$would") would-deny pairs, as --audit-as-enforced has them)}"
  fi
}
# table TRIPLES: the truth table, the way the upstream suite prints it ("-" for a pair not judged); long names
# (the houses model) are numbered, and their columns headed by the numbers.
table() {
  awk -v pods="${pods[*]}" '
    { cell[$1 " " $2] = $3 }
    END {
      n = split(pods, p, " "); w = 0
      for (i = 1; i <= n; i++) if (length(p[i]) > w) w = length(p[i])
      for (i = 1; i <= n; i++) { row[i] = w > 4 ? sprintf("%2d %s", i, p[i]) : p[i]; col[i] = w > 4 ? i : p[i] }
      rw = w > 4 ? w + 3 : 5
      printf "%-" rw "s", ""; for (j = 1; j <= n; j++) printf " %-4s", col[j]; printf "\n"
      for (i = 1; i <= n; i++) {
        printf "%-" rw "s", row[i]
        for (j = 1; j <= n; j++) printf " %-4s", (p[i] " " p[j]) in cell ? cell[p[i] " " p[j]] : "-"
        printf "\n"
      }
    }' <<< "$1"
}
# differ NAME WANT-TITLE WANT GOT-TITLE GOT: prints the two tables and where they differ.
differ() {
  echo "FAIL: $1"
  echo "$2:"; table "$3"
  echo "$4:"; table "$5"
  echo "comparison (. agree, X differ):"
  table "$(join -j 1 <(awk '{print $1"_"$2, $3}' <<< "$3" | sort) <(awk '{print $1"_"$2, $3}' <<< "$5" | sort) |
    awk '{split($1, k, "_"); print k[1], k[2], ($2 == $3 ? "." : "X")}')"
}

# steps CASE: the case's steps, one file each in $dir/steps/, in order (a case without markers is one step).
steps() {
  rm -rf "$dir/steps" && mkdir "$dir/steps"
  awk -v out="$dir/steps/" '
    /^# step: / { n++; file = sprintf("%s%03d.yaml", out, n); print "# probe: " probe > file; print > file; next }
    /^# probe: / && n == 0 { probe = substr($0, 10) }
    { if (n == 0) head = head $0 "\n"; else print > file }
    END { if (n == 0) { printf "%s", head > (out "001.yaml") } }' "$1"
  ls "$dir"/steps/*.yaml
}
# instantiate STEP: the step with @ip(...) and @node(...) replaced by the pods' current addresses and nodes.
instantiate() {
  local pod script=""
  for pod in "${pods[@]}"; do script+="s#@ip($pod)#${pod_ip[$pod]}#g; s#@node($pod)#node-${pod_node[$pod]}#g; "; done
  sed "$script" "$1"
}
# recreate POD: deletes the pod through the CNI plugin and adds it again; its server starts anew.
recreate() {
  local id=${1//\//-} n=${pod_node[$1]}
  kill "${server[$1]}" 2>/dev/null; wait "${server[$1]}" 2>/dev/null
  ip netns exec "$tag-node$n" env CNI_COMMAND=DEL CNI_CONTAINERID="$id" CNI_NETNS="/var/run/netns/$tag-$id" \
    CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni "$plugin" < "$dir/$id.conf" || { echo "FAIL: DEL $1"; return 1; }
  ip netns del "$tag-$id"
  local was=${pod_ip[$1]}
  nftpol_cni_pod "$1" "$n" "$dir/cni-$n.sock"
  echo "recreated $1: ${was} -> ${pod_ip[$1]}"
  [ "$was" != "${pod_ip[$1]}" ] || { echo "FAIL: $1 came back with its old address"; return 1; }
  ip netns exec "$tag-$id" "$probe" serve "${serve[@]}" & pids+=($!) server[$1]=$!
  nftpol_listening "$tag-$id" tcp+udp "${serve[@]}" || { echo "FAIL: the server of $1 does not listen"; return 1; }
}
# commit FILE TARGET: moves FILE into the manifests as TARGET (one rename: one change) and waits until both
# controllers committed a generation past it; the file is dropped when it would change nothing.
commit() {
  if cmp -s "$1" "$dir/m/$2"; then rm -f "$1"; return 0; fi
  local g1 g2
  g1=$(nftpol_generation 1 "$port") g2=$(nftpol_generation 2 "$port")
  mv "$1" "$dir/m/$2"
  nftpol_wait_past 1 "$port" "$g1" && nftpol_wait_past 2 "$port" "$g2"
}
# reflect FROM TO RESULT PROTOCOL PORT START_NS: probes the pair (30 ms each, at most 5 s) until it shows RESULT;
# prints the milliseconds from START to the start of that probe.
reflect() {
  local t0 end=$(( $(date +%s%N) + 5000000000 ))
  while [ "$(date +%s%N)" -lt "$end" ]; do
    t0=$(date +%s%N)
    [ "$(probe_pair "$1" "${pod_ip[$2]}" "$4" "$5" 30)" = "$3" ] && { echo $(( (t0 - $6) / 1000000 )); return 0; }
  done
  return 1
}
# percentiles MS...: "median p99".
percentiles() {
  printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {i = int(NR * 0.99 + 0.5); if (i < 1) i = 1; print a[int((NR + 1) / 2)], a[i]}'
}

passed=0 failed=0 skipped=0 judged=0
enforce=()  # milliseconds from a step's write to the first probe that shows it
commits=()  # milliseconds from a step's write to both controllers' commit
start=$(date +%s%N)
for case in "${cases[@]}"; do
 for step in $(steps "$case"); do
  name=$(basename "$case" .yaml)
  what=$(sed -n 's/^# step: //p' "$step" | head -1)
  [ -n "$what" ] && name="$name [$what]"
  probes=$(sed -n 's/^# probe: //p' "$step" | tail -1)
  renew=$(sed -n 's/^# recreate: //p' "$step")
  for pod in $renew; do recreate "$pod" || { failed=$((failed + 1)); continue 2; }; done
  instantiate "$step" > "$dir/step.yaml"
  # The state the step leads to, for the simulator before the kernel has it: it picks the pair to time.
  rm -rf "$dir/next" && cp -r "$dir/m" "$dir/next" && cp "$dir/step.yaml" "$dir/next/zz-case.yaml"
  [ -n "$renew" ] && write_pods > "$dir/pods.yaml" && cp "$dir/pods.yaml" "$dir/next/pods.yaml"
  first=$(tr ' ' '\n' <<< "$probes" | grep -v -e '^SCTP' -e @ | head -1)
  sentinel=$(sed -n 's/^# sentinel: //p' "$step")
  if [ -n "$first" ]; then
    if [ -n "$sentinel" ]; then
      sentinel+=" $(expected "$dir/next" "${first#*/}" "${first%/*}" | awk -v p="$sentinel" '$1 " " $2 == p {print $3}')"
    else
      sentinel=$(join -j 1 <(expected "$dir/m" "${first#*/}" "${first%/*}" | awk '$1 != $2 {print $1"_"$2, $3}') \
        <(expected "$dir/next" "${first#*/}" "${first%/*}" | awk '$1 != $2 {print $1"_"$2, $3}') |
        awk '$2 != $3 {split($1, k, "_"); print k[1], k[2], $3; exit}')
    fi
  fi
  written=$(date +%s%N)
  if [ -n "$sentinel" ]; then
    set -- $sentinel
    reflect "$1" "$2" "$3" "${first%/*}" "${first#*/}" "$written" > "$dir/reflect" &
    timer=$!
  fi
  # Renamed into place: the controllers see the whole step in one change. Named to sort after the generated
  # objects, so that a step's pods override them.
  if { [ -n "$renew" ] && ! commit "$dir/pods.yaml" pods.yaml; } || ! commit "$dir/step.yaml" zz-case.yaml; then
    echo "FAIL: $name: the controllers did not commit it"; cat "$dir"/controller-*.log | tail -5
    failed=$((failed + 1)); continue
  fi
  commits+=($(( ($(date +%s%N) - written) / 1000000 )))
  if [ -n "$sentinel" ]; then
    if wait "$timer"; then
      enforce+=($(cat "$dir/reflect"))
    else
      failed=$((failed + 1)); echo "FAIL: $name: $sentinel never showed on ${first} within 5 s"
    fi
  fi
  for spec in $probes; do
    # TCP/80@svc: through each pod's service; policy judges the backend, so the expectation is the same matrix.
    via=${spec#*@}; [ "$via" = "$spec" ] && via=""
    plain=${spec%@*}
    want=$(expected "$dir/m" "${plain#*/}" "${plain%/*}") || { echo "FAIL: $name: nftpol matrix refused the case"; failed=$((failed + 1)); continue; }
    if theirs=$(upstream "$dir/m/zz-case.yaml" "$plain"); then
      judged=$((judged + 1))
      mine=$(join -j 1 <(awk '{print $1"_"$2, $3}' <<< "$theirs") <(awk '{print $1"_"$2, $3}' <<< "$want") |
        awk '{split($1, k, "_"); print k[1], k[2], $3}')
      if [ "$mine" != "$theirs" ]; then
        failed=$((failed + 1)); differ "$name $spec: nftpol matrix disagrees with the case" "the case (upstream)" "$theirs" "nftpol matrix" "$mine"
        continue
      fi
    fi
    if [ "${plain%/*}" = SCTP ]; then
      # The kernel takes the rules (checked, not committed, by nft -c on both nodes); probing needs SCTP sockets.
      for n in 1 2; do
        ip netns exec "$tag-node$n" nft -c -f <(echo "flush ruleset"; "$nftpol" render --cluster "$dir/m" --node "node-$n") ||
          { failed=$((failed + 1)); echo "FAIL: $name $spec: nft -c refused node-$n's rules"; continue 2; }
      done
      skipped=$((skipped + 1)); echo "skipped: $name $spec (this kernel has no SCTP sockets; nft -c took the rules on both nodes)"
      continue
    fi
    flow_mark
    since=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
    round=$((round + 1))
    got=$(actual "${plain#*/}" "${plain%/*}" "$via")
    if [ "$want" = "$got" ]; then
      passed=$((passed + 1)); echo "ok: $name $spec"
    else
      failed=$((failed + 1)); differ "$name $spec" "expected (nftpol matrix)" "$want" "observed" "$got"
    fi
    flow_check "$name $spec" "$since" "${plain%/*}" "${plain#*/}" "$got" "$via"
  done
 done
done
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
read -r median p99 <<< "$(percentiles "${enforce[@]}")"
read -r cmedian cp99 <<< "$(percentiles "${commits[@]}")"
echo "time to enforce (write to the first probe that shows it): median ${median} ms, p99 ${p99} ms over ${#enforce[@]} steps"
echo "time to commit (write to both controllers' commit): median ${cmedian} ms, p99 ${cp99} ms over ${#commits[@]} steps"
echo "cases took ${elapsed} ms; ${judged} probes also judged against the cases' own (upstream) expectations"
echo "conformance: $passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
