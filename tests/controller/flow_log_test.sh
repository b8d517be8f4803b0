#!/usr/bin/env bash
# The flow log on real packets: a node (a network namespace of its own) with four pods (x/a x/b y/a y/b) and the
# controller enforcing a manifests directory with the flow log on, allowed connections included. Each probe
# must appear in the log file, on /flows and through `nftpol observe` with the verdict the probe saw, the side
# that decided and the policies and rule that `nftpol can-reach --output json` names for it. Probes are bounded
# (300 ms each); all is torn down on exit.
set -uo pipefail
nftpol=$1
probe=$2
source "$(dirname "$0")/../lib/netns.sh"
nftpol_reexec_in_netns "$@"
nftpol_pod_test "nftpol-t$$"
nftpol_four_pods "$probe"
cat > "$dir/m/policies.yaml" <<'YAML'
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: y}
spec: {podSelector: {}}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-x-a, namespace: y}
spec:
  podSelector: {}
  ingress:
  - from: [{namespaceSelector: {matchLabels: {ns: x}}, podSelector: {matchLabels: {pod: a}}}]
    ports: [{port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b-egress, namespace: x}
spec:
  podSelector: {matchLabels: {pod: b}}
  policyTypes: [Egress]
  egress:
  - to: [{namespaceSelector: {matchLabels: {ns: y}}}]
    ports: [{port: 81}]
---
# In audit mode: not enforced; x/a's connections it would deny are reported as would-deny.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-egress-audit, namespace: x, annotations: {nftpol.io/mode: audit}}
spec:
  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - ports: [{port: 81}]
YAML
"$nftpol" controller --manifests "$dir/m" --node node-1 --listen 127.0.0.1:9433 --no-cni-socket \
  --flow-log "$dir/flows.jsonl" --flow-log-flush 0.2 --flow-log-allowed 2>>"$dir/controller.log" &
pids+=($!)
ready() { curl -sf localhost:9433/readyz > /dev/null; }
check "the controller becomes ready" nftpol_wait_for 10 ready || { cat "$dir/controller.log"; exit 1; }
check "the table has the flow log's rules" bash -c "nft list table inet nftpol | grep -q 'log prefix \"nftpol ingress denied'"

address() { case $1 in x/a) echo 10.244.0.11;; x/b) echo 10.244.0.12;; y/a) echo 10.244.0.13;; y/b) echo 10.244.0.14;; esac; }
# probe FROM TO PROTOCOL PORT: one connection attempt; prints 1 (answered) or 0.
probe() {
  ip netns exec "$tag-${1%/*}-${1#*/}" "$probe" connect "$(tr A-Z a-z <<< "$3")" "$(address "$2")" "$4" 300 >/dev/null 2>&1 && echo 1 || echo 0
}
# The record of FROM -> TO PROTOCOL/PORT in the file, as one line of JSON (the last one).
record() {
  jq -c --arg s "$(address "$1")" --arg d "$(address "$2")" --arg p "$3" --argjson port "$4" \
    'select(.source.ip == $s and .destination.ip == $d and .protocol == $p and .destination.port == $port and .verdict != "would-deny")' \
    "$dir/flows.jsonl" 2>/dev/null | tail -1
}
# What the record must say, from can-reach: the verdict; the deciding side (the egress side when it denies,
# else the ingress side, when the destination is isolated), and per side the verdict, the tier that decided and
# the cluster policy rules that matched, the isolating policies and the first admitting rule.
expected() {
  "$nftpol" can-reach --cluster "$dir/m" "$1" "$2" --port "$4" --protocol "$3" --output json |
    jq -cS '.verdicts[0] as $v | def hit(h): h | {policy, rule, action} + (if .name != "" then {name} else {} end);
      def side(s): if s.applies then {verdict: (if s.allowed then "allowed" else "denied" end), decidedBy: s.decidedBy}
        + (if s.admin then {admin: hit(s.admin)} else {} end) + (if s.baseline then {baseline: hit(s.baseline)} else {} end)
        + (if s.isolated then {isolatedBy: s.policies} else {} end)
        + (if s.isolated and (s.allowedBy | length) > 0 then {allowedBy: {policy: s.allowedBy[0].policy, rule: s.allowedBy[0].rule}} else {} end)
        else null end;
      {verdict: (if .allowed then "allowed" else "denied" end),
       side: (if ($v.egress.isolated and ($v.egress.allowed | not)) then "egress"
              elif $v.ingress.isolated then "ingress" else null end),
       egress: side($v.egress), ingress: side($v.ingress)}'
}
actual() { jq -cS '{verdict, side, egress, ingress}' <<< "$1"; }
cases=("x/a y/a TCP 80" "x/a y/b TCP 81" "x/b y/a TCP 80" "x/b y/a UDP 80" "x/b y/a TCP 81" "x/a x/b TCP 80"
       "y/a x/a TCP 81" "y/b y/a TCP 80")
declare -A saw=()
for c in "${cases[@]}"; do
  set -- $c
  saw[$c]=$(probe "$1" "$2" "$3" "$4")
done
has_records() { for c in "${cases[@]}"; do set -- $c; [ -n "$(record "$@")" ] || return 1; done; }
check "every probe has its record within 2 s" nftpol_wait_for 2 has_records
for c in "${cases[@]}"; do
  set -- $c
  r=$(record "$@")
  want=$(expected "$@")
  verdict=$([ "${saw[$c]}" = 1 ] && echo allowed || echo denied)
  check "$c: the record's verdict is what the probe saw ($verdict)" [ "$(jq -r .verdict <<< "$r")" = "$verdict" ]
  if ! check "$c: the record names what can-reach names" [ "$(actual "$r")" = "$want" ]; then
    echo "  record:    $(actual "$r")"; echo "  can-reach: $want"
  fi
  check "$c: the ends are named" [ "$(jq -r '.source.namespace + "/" + .source.pod + " " + .destination.namespace + "/" + .destination.pod' <<< "$r")" = "$1 $2" ]
done
# Audit mode: x/a -> y/a on 80 went through (the audited policy is not enforced), and is reported as would-deny
# naming it, on x/a's egress, as can-reach --audit-as-enforced says; x/a -> y/b on 81, which it allows, is not.
would=$(jq -c 'select(.verdict == "would-deny")' "$dir/flows.jsonl")
check "the audited policy changed no verdict: x/a -> y/a on 80 was allowed" [ "${saw[x/a y/a TCP 80]}" = 1 ]
check "and that connection is reported as would-deny, on x/a's egress, naming the audited policy" \
  [ "$(jq -r 'select(.destination.ip == "10.244.0.13" and .destination.port == 80) | .side + " " + (.egress.audit | join(","))' <<< "$would" | sort -u)" = "egress x/a-egress-audit" ]
check "can-reach --audit-as-enforced denies it, at the same side" bash -c \
  "\"$nftpol\" can-reach --cluster '$dir/m' x/a y/a --port 80 --audit-as-enforced --output json | jq -e '.allowed == false and .verdicts[0].egress.allowed == false' >/dev/null"
check "what the audited policy allows is not reported as would-deny" [ -z "$(jq -r 'select(.destination.port == 81)' <<< "$would")" ]
check "the node is named" [ "$(jq -r .node "$dir/flows.jsonl" | sort -u)" = node-1 ]
check "nothing disagrees with the model" bash -c "! grep -q modelDisagrees '$dir/flows.jsonl'"

# /flows and its filters.
flows() { curl -sf "localhost:9433/flows?$1"; }
check "/flows has the denied records, and only those with verdict=denied" \
  bash -c "[ \"\$(curl -sf 'localhost:9433/flows?verdict=denied' | jq -r .verdict | sort -u)\" = denied ]"
check "/flows?pod=x/b names only x/b's connections" \
  bash -c "[ \"\$(curl -sf 'localhost:9433/flows?pod=x/b' | jq -r '[.source.pod, .destination.pod] | map(select(. == \"b\")) | length > 0' | sort -u)\" = true ]"
check "/flows?namespace=y has y's connections" [ "$(flows namespace=y | wc -l)" -ge 5 ]
check "/flows refuses an unknown filter with 400" [ "$(curl -s -o /dev/null -w '%{http_code}' 'localhost:9433/flows?colour=red')" = 400 ]

# Follow: a denied connection made after the follow starts arrives on the stream.
curl -sfN 'localhost:9433/flows?follow=true&verdict=denied&pod=y/b' > "$dir/follow" &
follower=$!
pids+=($follower)
nftpol_wait_for 2 bash -c "[ -s '$dir/follow' ]"  # the recent ones arrive first
before=$(wc -l < "$dir/follow")
probe y/a y/b TCP 81 > /dev/null  # denied at y/b's ingress
more() { [ "$(grep -c '"ip":"10.244.0.13"' "$dir/follow")" -ge 1 ]; }
check "a denied connection reaches /flows?follow within 2 s" nftpol_wait_for 2 more
nftpol_stop 2 "$follower"

# nftpol observe: the same records as a person reads them, and as JSON.
observe=$("$nftpol" observe --server 127.0.0.1:9433 --verdict denied --pod y/b)
check "observe prints one line per denied record of y/b" [ "$(wc -l <<< "$observe")" = "$(flows 'verdict=denied&pod=y/b' | wc -l)" ]
check "observe's line reads like can-reach's" grep -q '^DENIED: y/a -> y/b on TCP/81' <<< "$observe"
check "observe --output json is the records" [ "$("$nftpol" observe --server 127.0.0.1:9433 --output json --verdict denied | jq -r .verdict | sort -u)" = denied ]

# Metrics.
metrics=$(curl -sf localhost:9433/metrics)
check "would-denies are counted per audited policy" grep -q 'nftpol_policy_verdicts_total{verdict="would-deny",side="egress",namespace="x",policy="a-egress-audit"}' <<< "$metrics"
check "verdicts are counted per policy" grep -q 'nftpol_policy_verdicts_total{verdict="denied",side="ingress",namespace="y",policy="default-deny"}' <<< "$metrics"
lost=$(grep '^nftpol_flow_log_lost_total' <<< "$metrics" | awk '{n++; s += $2} END {print n, s}')
grep "^nftpol_flow_log_lost_total" <<< "$metrics" | grep -v " 0$"
check "the losses are exported by reason, none so far ($lost)" [ "$lost" = "5 0" ]
echo "flow log: $passed passed, $failed failed"
[ "$failed" = 0 ]
