#!/usr/bin/env bash
# The controller on a manifests directory, in a network namespace of its own (re-executes itself under
# `unshare --net`, so nothing it programs can reach the root namespace and nothing outlives it).
set -uo pipefail
nftpol=$1
src=$2
source "$(dirname "$0")/../lib/netns.sh"
nftpol_reexec_in_netns "$@"
ip link set lo up
nftpol_pod_test "nftpol-r$$"
log=$dir/controller.log
generation_is() { [ "$(curl -sf localhost:9412/readyz)" = "ready generation=$1" ]; }
wait_generation() { nftpol_wait_for 10 generation_is "$1"; }  # until /readyz reports generation $1
metric() { curl -sf localhost:9412/metrics | awk -v m="$1" '$1 == m {print $2}'; }
errors_counted() { [ "$(metric nftpol_manifest_errors_total)" -ge 1 ]; }
start_controller() {  # LOG [PREFIX...]: the controller on $dir/m in the background (run through PREFIX); $pid
  local log=$1
  shift
  "$@" "$nftpol" controller --manifests "$dir/m" --node node-a --listen 127.0.0.1:9412 --cni-socket "$dir/cni.sock" 2>"$log" &
  pid=$!
  pids+=($pid)
}
reports_broken() { nftpol_wait_for 10 grep -q "$1:[0-9]*:[0-9]*: invalid YAML" "$2"; }  # FILE LOG

mkdir "$dir/m"
cp "$src"/samples/cluster/*.yaml "$dir/m/"
# A cluster policy, enforced with the rest: its Admin tier chain is in what is programmed.
cat > "$dir/m/guardrail.yaml" <<'YAML'
apiVersion: policy.networking.k8s.io/v1alpha2
kind: ClusterNetworkPolicy
metadata: {name: guard}
spec:
  tier: Admin
  priority: 10
  subject: {namespaces: {}}
  ingress: [{action: Deny, from: [{namespaces: {matchLabels: {kubernetes.io/metadata.name: nowhere}}}]}]
YAML
echo "not: [yaml" > "$dir/m/broken.yaml"
start_controller "$log"
check "the broken file is reported with its location" reports_broken broken.yaml "$log"
check "not ready while a file is broken at startup" [ "$(curl -s -o /dev/null -w '%{http_code}' localhost:9412/readyz)" = 503 ]
check "healthz answers" [ "$(curl -sf localhost:9412/healthz)" = ok ]
check "no table is programmed from a partial set of files" bash -c '! nft list table inet nftpol >/dev/null 2>&1'
rm "$dir/m/broken.yaml"
check "ready after the broken file is gone" wait_generation 1
check "the table is programmed" bash -c "nft list table inet nftpol > /dev/null"
check "the cluster policy's Admin tier chain is programmed, and jumps to its chain" bash -c "nft list table inet nftpol | grep -A4 'chain admin-ingress-' | grep -q 'jump .*cnp-ingress-.*/cnp/guard'"
check "what is programmed is what render prints" bash -c "diff <(\"$nftpol\" render --cluster \"$dir/m\" --node node-a | tr -s ' \t\n' ' ') <(nft list table inet nftpol | tr -s ' \t\n' ' ') >/dev/null"

before=$(metric nftpol_netlink_messages_total)
sed -i 's/port: 5432/port: 5433/' "$dir/m/policies.yaml"
check "a change is enforced (generation 2)" wait_generation 2
check "the new port is in the kernel" bash -c 'nft list table inet nftpol | grep -q "tcp dport 5433"'
batch=$(( $(metric nftpol_netlink_messages_total) - before ))
check "the change was a small batch ($batch messages)" [ "$batch" -lt 20 ]

cp "$dir/m/policies.yaml" "$dir/policies.good"
echo "  garbage: [" >> "$dir/m/policies.yaml"
check "the broken edit is reported" reports_broken policies.yaml "$log"
check "a broken file keeps its last valid version" bash -c 'nft list table inet nftpol | grep -q "tcp dport 5433"'
check "the broken file is counted" nftpol_wait_for 5 errors_counted
check "generation unchanged by a broken file" [ "$(curl -sf localhost:9412/readyz)" = "ready generation=2" ]

nft delete table inet nftpol
touch "$dir/m/namespaces.yaml"  # any event triggers a full resync against the kernel
check "a deleted table is restored" bash -c 'for _ in $(seq 100); do nft list table inet nftpol >/dev/null 2>&1 && exit 0; sleep 0.05; done; exit 1'

check "SIGTERM stops it within 2 s" nftpol_stop 2 "$pid"
check "with status 0" [ "${nftpol_status[$pid]}" = 0 ]
check "and leaves the rules in place" bash -c "nft list table inet nftpol > /dev/null"
check "it said so" grep -q 'msg="stopping; the rules stay in place"' "$log"

cp "$dir/policies.good" "$dir/m/policies.yaml"
check "--once adopts the table left by the earlier run without changing it" \
  bash -c "\"$nftpol\" controller --manifests \"$dir/m\" --node node-a --once 2>&1 | grep -q 'messages=0'"
check "nftpol cleanup removes it" bash -c "\"$nftpol\" cleanup >/dev/null && ! nft list table inet nftpol >/dev/null 2>&1"
# Stopped while its first sync waits for a broken file: still gone within 2 s.
echo "not: [yaml" > "$dir/m/broken.yaml"
start_controller "$dir/blocked.log"
check "a restart with a broken file waits for it" reports_broken broken.yaml "$dir/blocked.log"
check "SIGTERM while the first sync waits: gone within 2 s" nftpol_stop 2 "$pid"
check "with status 0" [ "${nftpol_status[$pid]}" = 0 ]

# Input that cannot be read changes nothing that is enforced: an unreadable file, a link to nothing (new, or one
# whose target went), a directory the walk cannot enter. The controller runs without CAP_DAC_OVERRIDE and
# CAP_DAC_READ_SEARCH, so that permissions apply to it as to anyone (root reads everything).
rm "$dir/m/broken.yaml"
mkdir "$dir/m/shop" "$dir/elsewhere"
mv "$dir/m/pods.yaml" "$dir/m/shop/pods.yaml"
mv "$dir/m/services.yaml" "$dir/elsewhere/services.yaml"
ln -s "$dir/elsewhere/services.yaml" "$dir/m/services.yaml"
start_controller "$dir/unreadable.log" \
  setpriv --inh-caps=-dac_override,-dac_read_search --bounding-set=-dac_override,-dac_read_search --
check "without DAC override: ready" nftpol_wait_for 10 bash -c "curl -sf localhost:9412/readyz | grep -q '^ready'"
enforced() { nft list table inet nftpol | tr -s ' \t\n' ' '; }
before=$(enforced)
generation=$(curl -sf localhost:9412/readyz)
unchanged() {  # what the kernel enforces and the committed generation are as they were
  [ "$(enforced)" = "$before" ] && [ "$(curl -sf localhost:9412/readyz)" = "$generation" ]
}
chmod 000 "$dir/m/policies.yaml"
check "an unreadable file is an error that names it" \
  nftpol_wait_for 10 grep -q "m/policies.yaml: cannot read: Permission denied" "$dir/unreadable.log"
check "and its policies stay enforced" unchanged
ln -s "$dir/nowhere" "$dir/m/a-link-to-nothing.yaml"
check "a link to nothing is an error that names it" \
  nftpol_wait_for 10 grep -q "m/a-link-to-nothing.yaml: cannot read: No such file or directory" "$dir/unreadable.log"
check "and nothing else changes" unchanged
rm "$dir/elsewhere/services.yaml"
touch "$dir/m/namespaces.yaml"  # inotify does not see the target go: any event rereads
check "a link whose target went is an error" \
  nftpol_wait_for 10 grep -q "m/services.yaml: cannot read: No such file or directory" "$dir/unreadable.log"
check "and its services stay" unchanged
chmod 000 "$dir/m/shop"
check "a directory the walk cannot enter is an error that names it" \
  nftpol_wait_for 10 grep -q "m/shop: cannot read the directory: Permission denied" "$dir/unreadable.log"
check "and its pods stay" unchanged
cp "$src/samples/cluster/services.yaml" "$dir/elsewhere/services.yaml"  # first: inotify does not see it
chmod 755 "$dir/m/shop"
chmod 644 "$dir/m/policies.yaml"
rm "$dir/m/a-link-to-nothing.yaml"
check "all readable again: the table is what render makes of the files" nftpol_wait_for 10 \
  bash -c "source '$(dirname "$0")/../lib/netns.sh'; diff <(\"$nftpol\" render --cluster \"$dir/m\" --node node-a 2>/dev/null | nftpol_blocks) <(nft list table inet nftpol | nftpol_blocks) >/dev/null"
check "SIGTERM stops it within 2 s" nftpol_stop 2 "$pid"

echo "controller: $passed passed, $failed failed"
[ "$failed" = 0 ]
