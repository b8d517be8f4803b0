#!/usr/bin/env bash
# A flood against the flow log: 20k denied TCP SYNs a second for 10 s, each a new connection, from x/b at y/a
# (x/b's egress is denied). Every one stays denied (y/a counts what reaches it), the controller's CPU and memory
# stay bounded, the loss counters account for every packet the log rules were offered and did not record, and
# the log goes on at once afterwards. Runs alone (ctest RUN_SERIAL): it keeps a core busy for 10 s.
set -uo pipefail
nftpol=$1
probe=$2
rate=${FLOOD_RATE:-20000} seconds=${FLOOD_SECONDS:-10}
source "$(dirname "$0")/../lib/netns.sh"
nftpol_reexec_in_netns "$@"
nftpol_pod_test "nftpol-t$$"
nftpol_four_pods "$probe"
cat > "$dir/m/policies.yaml" <<'YAML'
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
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: y}
spec: {podSelector: {}}
YAML
"$nftpol" controller --manifests "$dir/m" --node node-1 --listen 127.0.0.1:9434 --no-cni-socket \
  --flow-log "$dir/flows.jsonl" --flow-log-flush 1 2>>"$dir/controller.log" &
controller=$!
pids+=($controller)
ready() { curl -sf localhost:9434/readyz > /dev/null; }
check "the controller becomes ready" nftpol_wait_for 10 ready || { cat "$dir/controller.log"; exit 1; }

# What reaches y/a from x/b on port 80, counted inside y/a (a pod's namespace of this test's own).
ip netns exec "$tag-y-a" nft -f - <<'NFT'
table ip seen {
  chain in { type filter hook input priority 0; ip saddr 10.244.0.12 tcp dport 80 counter; }
}
NFT
seen() { ip netns exec "$tag-y-a" nft list chain ip seen in | sed -n 's/.*counter packets \([0-9]*\).*/\1/p'; }
offered() { nft list counter inet nftpol flow-log-offered | sed -n 's/.*packets \([0-9]*\).*/\1/p'; }
cpu() { awk '{print $14 + $15}' "/proc/$controller/stat"; }  # clock ticks
rss() { awk '/^VmRSS/ {print $2}' "/proc/$controller/status"; }  # KiB
lost() { curl -sf localhost:9434/metrics | awk -v r="$1" '$1 == "nftpol_flow_log_lost_total{reason=\"" r "\"}" {print $2}'; }
logged() {  # packets the records count, of x/b -> y/a TCP/80
  jq -s '[.[] | select(.source.ip == "10.244.0.12" and .destination.ip == "10.244.0.13" and .destination.port == 80) | .count] | add // 0' "$dir/flows.jsonl"
}

offered0=$(offered) cpu0=$(cpu) rss0=$(rss) ticks=$(getconf CLK_TCK)
start=$(date +%s%N)
sent=$(ip netns exec "$tag-x-b" "$probe" synflood 10.244.0.12 10.244.0.13 80 "$rate" "$seconds")
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
cpu1=$(cpu) rss1=$(rss)
echo "flood: $sent SYNs in $elapsed_ms ms"
check "the flood ran at its rate (${sent:-0} SYNs in $elapsed_ms ms)" [ "${sent:-0}" -ge $((rate * seconds)) ] && [ "$elapsed_ms" -lt $((seconds * 1000 + 2000)) ]
check "none of them reached y/a" [ "$(seen)" = 0 ]
cpu_pct=$(( (cpu1 - cpu0) * 100 * 1000 / ticks / elapsed_ms ))
echo "controller during the flood: ${cpu_pct}% of a core, RSS ${rss0} -> ${rss1} KiB"
check "the controller used at most a quarter of a core (${cpu_pct}%)" [ "$cpu_pct" -le 25 ]
check "its memory grew by less than 32 MiB" [ $((rss1 - rss0)) -lt 32768 ]

# The accounting: what the log rules were offered is what the records count plus what was lost, once the
# controller has read the group out and its rate-limit total has settled (it lags by half a second).
offered_delta=$(( $(offered) - offered0 ))
check "the log rules were offered the flood" [ "$offered_delta" -ge $((sent * 99 / 100)) ]
accounted() {
  total=$(( $(logged) + $(lost rate-limit) + $(lost sequence-gap) + $(lost aggregates) ))
  [ "$total" = "$offered_delta" ]
}
check "records plus losses account for every packet offered" nftpol_wait_for 5 accounted ||
  echo "  offered $offered_delta, logged $(logged), rate-limit $(lost rate-limit), gaps $(lost sequence-gap), aggregates $(lost aggregates)"
echo "offered $offered_delta: logged $(logged), lost to the rate limit $(lost rate-limit), sequence gaps $(lost sequence-gap)"
check "most were held back by the rate limit, not lost on the way" [ "$(lost sequence-gap)" -lt $((offered_delta / 100 + 1)) ]

# At once afterwards: a new denied connection, on the rule the flood hit and on another, gets its record.
mark=$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)
ip netns exec "$tag-x-b" "$probe" connect tcp 10.244.0.13 80 300 >/dev/null
ip netns exec "$tag-x-a" "$probe" connect tcp 10.244.0.14 81 300 >/dev/null
after() {
  [ "$(jq -r --arg m "$mark" 'select(.lastSeen >= $m and .verdict == "denied") | .source.ip + ">" + .destination.ip' "$dir/flows.jsonl" | sort -u | tr '\n' ' ')" = "10.244.0.11>10.244.0.14 10.244.0.12>10.244.0.13 " ]
}
check "after the flood the log records new denied connections within 3 s" nftpol_wait_for 3 after
echo "flood: $passed passed, $failed failed"
[ "$failed" = 0 ]
