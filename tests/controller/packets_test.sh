#!/usr/bin/env bash
# Real packets: a node (a network namespace of its own, via `unshare --net`) with a bridge, four pods (network
# namespaces named nftpol-t<pid>-*) attached by plain `ip` commands, each serving TCP and UDP on ports 80 and 81,
# and the controller enforcing a manifests directory. At every step every pod pair is probed and compared with
# `nftpol matrix` on the same manifests. Probes are bounded (300 ms each, run in parallel); all is torn down on exit.
set -uo pipefail
nftpol=$1
probe=$2
source "$(dirname "$0")/../lib/netns.sh"
nftpol_reexec_in_netns "$@"
nftpol_pod_test "nftpol-t$$"
nftpol_four_pods "$probe"
start_controller() {
  "$nftpol" controller --manifests "$dir/m" --node node-1 --listen 127.0.0.1:9432 --cni-socket "$dir/cni.sock" "$@" 2>>"$dir/controller.log" &
  controller=$!
  pids+=($controller)
}
start_controller

declare -a enforce_ms=()
generation() { curl -sf localhost:9432/readyz | sed -n 's/^ready generation=//p'; }
synced() {  # waits (bounded, 10 s) until the controller has committed generation $1 or a later one
  local g _
  for _ in $(seq 500); do
    g=$(generation)
    [ -n "$g" ] && [ "$g" -ge "$1" ] && return 0
    sleep 0.02
  done
  return 1
}
apply() {  # name, policy YAML (may be empty to remove every policy): one change, written atomically
  local start=$(date +%s%N) before
  before=$(generation)
  if [ -n "$2" ]; then printf '%s\n' "$2" | nftpol_write "$dir/m/policies.yaml"; else rm "$dir/m/policies.yaml"; fi
  if synced $((before + 1)); then
    enforce_ms+=($((($(date +%s%N) - start) / 1000000)))
  else
    failed=$((failed + 1)); echo "FAIL: $1: the controller did not commit a generation past $before"; tail -5 "$dir/controller.log"
  fi
}
established() { nftpol_wait_for 5 grep -q '^established' "$1"; }  # the probe writing to file $1 got its first reply
exited() { ! nftpol_alive "$1"; }
table() {  # prints a 4x4 truth table from a string of 16 0/1
  echo "           x/a x/b y/a y/b"
  local names=(x/a x/b y/a y/b)
  for i in 0 1 2 3; do
    printf '    %-6s' "${names[$i]}"
    for j in 0 1 2 3; do [ "${1:$((i * 4 + j)):1}" = 1 ] && printf '   .' || printf '   X'; done
    echo
  done
}
compare() {  # step name, protocol, port
  local expected actual="" i j
  expected=$("$nftpol" matrix --cluster "$dir/m" --port "$3" --protocol "$2" --output json 2>/dev/null |
    sed 's/.*"matrix"://' | sed 's/true/1/g; s/false/0/g' | tr -cd '01')
  for i in 0 1 2 3; do
    for j in 0 1 2 3; do
      set -- ${pods[$i]}; local from=$tag-$1-$2
      set -- ${pods[$j]}; local to=10.244.0.$3
      ( ip netns exec "$from" "$probe" connect "$(echo "$PROTO" | tr A-Z a-z)" "$to" "$PORT" 300 && echo 1 > "$dir/p$i$j" || echo 0 > "$dir/p$i$j" ) &
    done
  done
  wait_probes
  for i in 0 1 2 3; do for j in 0 1 2 3; do actual+=$(cat "$dir/p$i$j"); done; done
  if [ ${#expected} = 16 ] && [ "$expected" = "$actual" ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "FAIL: $STEP $PROTO/$PORT"; echo "  expected (nftpol matrix):"; table "$expected"; echo "  actual (probes):"; table "$actual"
  fi
}
wait_probes() { for p in $(jobs -p); do case " ${pids[*]} " in *" $p "*) ;; *) wait "$p";; esac; done; }
check_all() {  # step name
  STEP=$1
  for spec in "TCP 80" "TCP 81" "UDP 80"; do
    set -- $spec; PROTO=$1 PORT=$2
    compare "$STEP" "$PROTO" "$PORT"
  done
}

policy() {  # namespace, name, spec
  printf -- '---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: %s, namespace: %s}\nspec:\n%s\n' "$2" "$1" "$3"
}
deny_x=$(policy x deny-all "  podSelector: {}")
from_y=$(policy x allow-from-y "  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {ns: y}}")
named=$(policy x a-named-port "  podSelector: {matchLabels: {pod: a}}
  ingress:
  - ports:
    - port: serve-81-tcp")
except=$(policy y b-egress-except "  podSelector: {matchLabels: {pod: b}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {cidr: 10.244.0.0/24, except: [10.244.0.12/32]}")

check "the controller becomes ready" synced 1 || { cat "$dir/controller.log"; exit 1; }
check_all "no policy"
apply "deny all into x" "$deny_x"; check_all "deny all into x"
apply "allow from namespace y" "$deny_x
$from_y"; check_all "allow from namespace y"
apply "named port and ipBlock except" "$named
$except"; check_all "named port and ipBlock except"
# Two ipBlocks whose texts once hashed to one set name (32 bits of FNV-1a): the kernel enforced the first block
# for both policies. Each must be enforced as written.
collide_a=$(policy y a-egress "  podSelector: {matchLabels: {pod: a}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {cidr: 10.244.0.0/16, except: [10.244.0.11/32, 10.244.16.206/31]}")
collide_b=$(policy y b-egress "  podSelector: {matchLabels: {pod: b}}
  policyTypes: [Egress]
  egress:
  - to:
    - ipBlock: {cidr: 10.244.0.0/16, except: [10.244.0.12/32, 10.244.82.151/32]}")
apply "ipBlocks that collided under 32-bit names" "$collide_a
$collide_b"; check_all "ipBlocks that collided under 32-bit names"
check "two cidr sets for the two blocks" [ "$(nft list sets table inet nftpol | grep -c 'set cidr-')" = 2 ]
apply "all policies removed" ""; check_all "all policies removed"

# Revoking: an established connection that a change denies stops at its next packet; with
# --no-conntrack-revoke it goes on (conntrack's `established` verdict comes first).
# Two clients: one that speaks first (`hold`, an echo every 10 ms) and one that only listens to a server that
# speaks (`watch` a `push` server): a server's byte that meets no conntrack entry must not pass for a connection
# the server opened.
ip netns exec "$tag-x-a" "$probe" echo 82 &
pids+=($!)
ip netns exec "$tag-x-a" "$probe" push 83 &
pids+=($!)
check "the echo and push servers listen" nftpol_listening "$tag-x-a" tcp 82 83
revoke_case() {  # name, expectation: cut | held, client: hold PORT 82 | watch PORT 83
  apply "$1: allow y into x" "$deny_x
$from_y"
  ip netns exec "$tag-y-a" "$probe" "$3" 10.244.0.11 "$4" 20000 > "$dir/hold" &
  local h=$! status
  pids+=($h)
  check "$1: the connection is established" established "$dir/hold"
  local mark=$(($(date +%s%N) / 1000000))
  apply "$1: deny y" "$deny_x"
  if [ "$2" = cut ]; then
    nftpol_wait_for 5 exited "$h"
    nftpol_stop 1 "$h"
    status=${nftpol_status[$h]}
    if [ "$status" = 0 ]; then
      revoke_ms="${revoke_ms:+$revoke_ms }$(($(tail -1 "$dir/hold") - mark))"
      passed=$((passed + 1))
    else
      failed=$((failed + 1)); echo "FAIL: $1: the established connection was not cut (status $status)"
      grep -E "conntrack|reconciled" "$dir/controller.log" | tail -12
    fi
  else
    # Nothing to poll for when nothing may happen: the connection must outlive the commit by a second (the
    # client would have given up on it within one).
    sleep 1
    check "$1: the established connection is held" nftpol_alive "$h"
    nftpol_stop 1 "$h"
  fi
}
revoke_case "revoke" cut hold 82
revoke_case "revoke, the server speaking" cut watch 83
# Admitted again: a UDP flow that never pauses (a datagram every 10 ms keeps its conntrack entry alive) is cut
# by one change and resumes with the next one that admits it.
apply "restore: allow y into x" "$deny_x
$from_y"
ip netns exec "$tag-y-a" "$probe" flow 10.244.0.11 80 20000 > "$dir/flow" &
flow=$!
pids+=($flow)
check "restore: the UDP flow is established" established "$dir/flow"
denied=$(($(date +%s%N) / 1000000))
apply "restore: deny y" "$deny_x"
check "restore: the denied UDP flow is cut" nftpol_wait_for 5 grep -q '^cut' "$dir/flow"
allowed=$(($(date +%s%N) / 1000000))
apply "restore: allow y again" "$deny_x
$from_y"
nftpol_wait_for 5 exited "$flow"
nftpol_stop 1 "$flow"
status=${nftpol_status[$flow]}
cut_at=$(sed -n 's/^cut //p' "$dir/flow") resumed_at=$(sed -n 's/^resumed //p' "$dir/flow")
if [ "$status" = 0 ] && [ "${cut_at:-0}" -ge "$denied" ] && [ "${resumed_at:-0}" -ge "$allowed" ]; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  echo "FAIL: a revoked UDP flow admitted again: status $status (3 never cut, 4 never resumed); denied at $denied, allowed at $allowed:"
  cat "$dir/flow"; grep conntrack "$dir/controller.log" | tail -3
fi
check "SIGTERM stops the controller within 2 s" nftpol_stop 2 "$controller"
check "with status 0" [ "${nftpol_status[$controller]}" = 0 ]
start_controller --no-conntrack-revoke
check "the restarted controller is ready" synced 1
apply "restart without revocation" "$deny_x"
revoke_case "no revoke" held hold 82

echo "time from manifest write to the first refused packet of an established connection (ms, a client speaking, a server speaking): ${revoke_ms:-none}"
sorted=$(printf '%s\n' "${enforce_ms[@]}" | sort -n | tr '\n' ' ')
echo "time from manifest write to synced enforcement (ms): $sorted"
echo "packets: $passed passed, $failed failed"
[ "$failed" = 0 ]
