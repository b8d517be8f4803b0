#!/usr/bin/env bash
# nftpol trace on real packets: four pods and the controller; an allowed and a denied connection traced, each
# hop named and the verdict compared with can-reach; then a rule deleted behind the controller's back (the
# accept of y/a's ingress chain), and trace reports the disagreement. Probes are bounded; all is torn down on exit.
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
YAML
"$nftpol" controller --manifests "$dir/m" --node node-1 --listen 127.0.0.1:9437 --no-cni-socket 2>>"$dir/controller.log" &
pids+=($!)
ready() { curl -sf localhost:9437/readyz > /dev/null; }
check "the controller becomes ready" nftpol_wait_for 10 ready || { cat "$dir/controller.log"; exit 1; }
address() { case $1 in x/a) echo 10.244.0.11;; x/b) echo 10.244.0.12;; y/a) echo 10.244.0.13;; y/b) echo 10.244.0.14;; esac; }

# trace NAME FROM TO PORT: runs nftpol trace for 3 s, and once it has armed, one connection attempt; leaves its
# output in $dir/NAME and its exit status in $dir/NAME.status.
trace() {
  ( "$nftpol" trace --cluster "$dir/m" "$2" "$3" --port "$4" --seconds 3 > "$dir/$1" 2> "$dir/$1.err"
    echo $? > "$dir/$1.status" ) &
  local t=$!
  nftpol_wait_for 5 grep -q '^tracing' "$dir/$1.err" || { cat "$dir/$1.err"; return 1; }
  ip netns exec "$tag-${2%/*}-${2#*/}" "$probe" connect tcp "$(address "$3")" "$4" 300 > /dev/null
  wait "$t"
}
trace allowed x/a y/a 80
check "an allowed connection: trace exits 0 (agree)" [ "$(cat "$dir/allowed.status")" = 0 ] || cat "$dir/allowed" "$dir/allowed.err"
check "its hops name the admitting rule" grep -q 'ingress-.*"y/from-x-a ingress\[0\]" -> accept' "$dir/allowed"
check "it says the kernel allowed it, and can-reach agrees" grep -q '^  kernel: ALLOWED' "$dir/allowed"
check "and prints can-reach's verdict" grep -q '^can-reach: ALLOWED: x/a -> y/a on TCP/80' "$dir/allowed"

trace denied x/b y/a 80
check "a denied connection: trace exits 0 (agree)" [ "$(cat "$dir/denied.status")" = 0 ] || cat "$dir/denied" "$dir/denied.err"
check "its hops end at the egress chain's default deny, naming the policy" grep -q 'egress-.*"isolated by x/b-egress" -> drop' "$dir/denied"
check "it says where the kernel denied it" grep -q '^  kernel: DENIED at the egress chain: isolated by x/b-egress' "$dir/denied"

trace nothing x/a y/b 80  # the probe goes to y/b; the trace was for x/a -> y/b, so this one is traced too
check "the trace follows only its own connection" bash -c "! grep -q '10.244.0.13' '$dir/nothing'"

# Behind the controller's back: the accept of y/a's ingress chain goes (and the controller's periodic resync,
# a minute away, has not put it back yet).
chain=$(nft list map inet nftpol ingress-v4 | grep -o '10.244.0.13 : jump [^ ,}]*' | awk '{print $4}')
handle=$(nft -a list chain inet nftpol "$chain" | awk '/"y\/from-x-a ingress\[0\]" # handle/ && / accept / {print $NF; exit}')
check "the accept rule of y/a's ingress chain is deleted by hand" nft delete rule inet nftpol "$chain" handle "$handle"
trace corrupted x/a y/a 80
check "trace exits 1: the kernel and can-reach disagree" [ "$(cat "$dir/corrupted.status")" = 1 ] || cat "$dir/corrupted"
check "and says so plainly" grep -q 'DISAGREE: the kernel denied it at the ingress; can-reach says allowed' "$dir/corrupted"
check "bad input exits 2" bash -c "\"$nftpol\" trace --cluster '$dir/m' x/a nowhere/pod --port 80 --seconds 1; [ \$? = 2 ]"
[ -n "${TRACE_SHOW:-}" ] && cat "$dir/allowed" "$dir/denied" "$dir/corrupted"
echo "trace: $passed passed, $failed failed"
[ "$failed" = 0 ]
