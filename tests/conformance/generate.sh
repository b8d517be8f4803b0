#!/usr/bin/env bash
# Generated conformance cases, in the manner of cyclonus: NetworkPolicies drawn from every combination the API
# allows, for the harness to check against the simulator on real packets.
#
#   tests/conformance/generate.sh SEED COUNT DIRECTORY
#
# writes COUNT cases into DIRECTORY (gen-SEED-NNN.yaml), the same for the same seed on any machine (its own
# linear congruential generator, not bash's RANDOM). Each case is one or two policies in x, y or z over the
# harness's pods, with:
#   targets     every pod, one pod by label, pods by a matchExpressions In/NotIn/Exists
#   types       Ingress, Egress or both, declared or implied
#   peers       none (everyone), a pod selector, a namespace selector (ns label or kubernetes.io/metadata.name,
#               matchLabels or matchExpressions), both in one peer, an ipBlock (a node's pod subnet, or the pod
#               network with one pod's address or a node's subnet as the except)
#   ports       none (every port), a number, a container port name, a range (endPort), a protocol alone
# and, in about half the cases, one or two ClusterNetworkPolicies of either tier around them: a namespaces or
# pods subject, rules of every action with namespaces, pods and (egress) networks peers and protocols by
# number, range or destinationNamedPort,
# and two probes drawn from TCP and UDP on ports 80 and 81. The expected truth tables are the simulator's: the
# harness compares them with the probes.
set -euo pipefail
[ $# = 3 ] || { echo "usage: $0 SEED COUNT DIRECTORY" >&2; exit 2; }
seed=$1 count=$2 out=$3
mkdir -p "$out"

state=$seed
# rnd N: r = a number in [0, N).
rnd() {
  state=$(((state * 1103515245 + 12345) % 2147483648))
  r=$(((state / 65536) % $1))
}
# pick WORD...: w = one of the words.
pick() {
  local options=("$@")
  rnd ${#options[@]}
  w=${options[$r]}
}

pods=(a b c)
namespaces=(x y z)

# Each part sets its text in a variable of its own rather than printing it: a $(...) would run in a subshell,
# whose draws the generator's state would never see.
target() {
  rnd 4
  case $r in
    0) t="{}" ;;
    1) pick "${pods[@]}"; t="{matchLabels: {pod: $w}}" ;;
    2) pick In NotIn; local op=$w; pick "${pods[@]}"; local v=$w; pick "${pods[@]}"
       t="{matchExpressions: [{key: pod, operator: $op, values: [$v, $w]}]}" ;;
    3) t="{matchExpressions: [{key: pod, operator: Exists}]}" ;;
  esac
}
pod_selector() { pick "${pods[@]}"; ps="{matchLabels: {pod: $w}}"; }
namespace_selector() {
  rnd 4
  case $r in
    0) pick "${namespaces[@]}"; nss="{matchLabels: {ns: $w}}" ;;
    1) pick "${namespaces[@]}"; nss="{matchLabels: {kubernetes.io/metadata.name: $w}}" ;;
    2) pick In NotIn; local op=$w; pick "${namespaces[@]}"
       nss="{matchExpressions: [{key: kubernetes.io/metadata.name, operator: $op, values: [$w]}]}" ;;
    3) nss="{}" ;;
  esac
}
peer() {
  rnd 5
  case $r in
    0) pod_selector; pe="{podSelector: $ps}" ;;
    1) namespace_selector; pe="{namespaceSelector: $nss}" ;;
    2) namespace_selector; pod_selector; pe="{namespaceSelector: $nss, podSelector: $ps}" ;;
    3) pick 1 2; pe="{ipBlock: {cidr: 10.244.$w.0/24}}" ;;
    4) rnd 2
       if [ $r = 0 ]; then
         pick "${namespaces[@]}"; local ns=$w; pick "${pods[@]}"
         pe="{ipBlock: {cidr: 10.244.0.0/16, except: [\"@ip($ns/$w)/32\"]}}"
       else
         pick 1 2; pe="{ipBlock: {cidr: 10.244.0.0/16, except: [10.244.$w.0/24]}}"
       fi ;;
  esac
}
port() {
  rnd 4
  case $r in
    0) pick 80 81; local p=$w; pick TCP UDP; po="{port: $p, protocol: $w}" ;;
    1) pick serve-80-tcp serve-81-tcp serve-80-udp serve-81-udp
       local proto=${w##*-}; po="{port: $w, protocol: ${proto^^}}" ;;
    2) pick TCP UDP; local proto=$w; pick "80, endPort: 81" "81, endPort: 90" "70, endPort: 80"
       po="{port: $w, protocol: $proto}" ;;
    3) pick TCP UDP; po="{protocol: $w}" ;;
  esac
}
# rules KEY: a direction's rules (one or two, each with no to two peers and no to two ports), appended to text.
rules() {
  local key=$1 n i j peers ports rule
  rnd 2; n=$((r + 1))
  for ((i = 0; i < n; i++)); do
    peers="" ports="" rule=""
    rnd 3; for ((j = 0; j < r; j++)); do peer; peers+="${peers:+, }$pe"; done
    rnd 3; for ((j = 0; j < r; j++)); do port; ports+="${ports:+, }$po"; done
    [ -n "$peers" ] && rule="$key: [$peers]"
    [ -n "$ports" ] && rule+="${rule:+, }ports: [$ports]"
    text+="  - {$rule}"$'\n'
  done
}
# policy NAME: one NetworkPolicy, appended to text.
policy() {
  pick "${namespaces[@]}"
  local ns=$w types
  pick Ingress Egress "Ingress, Egress"; types=$w
  target
  text+="apiVersion: networking.k8s.io/v1"$'\n'"kind: NetworkPolicy"$'\n'
  text+="metadata: {name: $1, namespace: $ns}"$'\n'"spec:"$'\n'"  podSelector: $t"$'\n'
  rnd 3  # an Ingress-only policy may leave its types implied
  [ "$types" = Ingress ] && [ $r = 0 ] || text+="  policyTypes: [$types]"$'\n'
  local direction key
  for direction in Ingress Egress; do
    [[ $types == *$direction* ]] || continue
    key=from; [ $direction = Egress ] && key=to
    rnd 4  # now and then a direction without rules: isolation alone
    if [ $r = 0 ]; then text+="  ${direction,}: []"$'\n'; else text+="  ${direction,}:"$'\n'; rules $key; fi
  done
}

# cnp_peer DIRECTION: one peer of a cluster policy's rule, in pe (egress peers may also be networks).
cnp_peer() {
  if [ "$1" = egress ]; then rnd 3; else rnd 2; fi
  case $r in
    0) namespace_selector; pe="{namespaces: $nss}" ;;
    1) namespace_selector; pod_selector; pe="{pods: {namespaceSelector: $nss, podSelector: $ps}}" ;;
    2) rnd 2
       if [ $r = 0 ]; then pick 1 2; pe="{networks: [10.244.$w.0/24]}"
       else pick "${namespaces[@]}"; local ns=$w; pick "${pods[@]}"; pe="{networks: [\"@ip($ns/$w)/32\"]}"; fi ;;
  esac
}
# cnp_protocol: one entry of a cluster policy rule's protocols, in po.
cnp_protocol() {
  rnd 4
  case $r in
    0) pick tcp udp; local proto=$w; pick 80 81; po="{$proto: {destinationPort: {number: $w}}}" ;;
    1) pick tcp udp; po="{$w: {destinationPort: {range: {start: 79, end: 80}}}}" ;;
    2) pick tcp udp; po="{$w: {destinationPort: {range: {start: 81, end: 90}}}}" ;;
    3) pick serve-80-tcp serve-81-tcp serve-80-udp serve-81-udp; po="{destinationNamedPort: $w}" ;;
  esac
}
# cluster_policy NAME: one ClusterNetworkPolicy of either tier, appended to text.
cluster_policy() {
  local tier priority subject direction key n i j peers protocols
  pick Admin Baseline; tier=$w
  rnd 3; priority=$((r * 10))
  rnd 2
  if [ $r = 0 ]; then namespace_selector; subject="{namespaces: $nss}"
  else namespace_selector; target; subject="{pods: {namespaceSelector: $nss, podSelector: $t}}"; fi
  text+="apiVersion: policy.networking.k8s.io/v1alpha2"$'\n'"kind: ClusterNetworkPolicy"$'\n'
  text+="metadata: {name: $1}"$'\n'"spec:"$'\n'"  tier: $tier"$'\n'"  priority: $priority"$'\n'
  text+="  subject: $subject"$'\n'
  for direction in ingress egress; do
    rnd 3; n=$r
    [ "$n" = 0 ] && continue
    key=from; [ $direction = egress ] && key=to
    text+="  $direction:"$'\n'
    for ((i = 0; i < n; i++)); do
      peers="" protocols=""
      rnd 2; for ((j = 0; j <= r; j++)); do cnp_peer $direction; peers+="${peers:+, }$pe"; done
      rnd 3; for ((j = 0; j < r; j++)); do cnp_protocol; protocols+="${protocols:+, }$po"; done
      pick Accept Deny Pass
      text+="  - {action: $w, $key: [$peers]${protocols:+, protocols: [$protocols]}}"$'\n'
    done
  done
}

probes=(TCP/80 TCP/81 UDP/80 UDP/81)
for ((c = 1; c <= count; c++)); do
  rnd 4; i=$r
  rnd 3
  text="# generated: seed $seed, case $c"$'\n'"# probe: ${probes[$i]} ${probes[$(((i + 1 + r) % 4))]}"$'\n'
  policy "p$c-1"
  rnd 3
  if [ $r = 0 ]; then text+="---"$'\n'; policy "p$c-2"; fi
  # Every other case adds one or two cluster policies: the tiers around the NetworkPolicies.
  rnd 4
  if [ $r -ge 2 ]; then
    text+="---"$'\n'; cluster_policy "c$c-1"
    [ $r = 3 ] && { text+="---"$'\n'; cluster_policy "c$c-2"; }
  fi
  printf '%s' "$text" > "$(printf '%s/gen-%s-%03d.yaml' "$out" "$seed" "$c")"
done
echo "$out"
