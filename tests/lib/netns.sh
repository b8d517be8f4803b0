# Shell helpers for tests and benchmarks that build nodes and pods out of network namespaces. Source it.

# Re-executes the calling script inside a network namespace of its own (`unshare --net`), so that nothing it
# programs can reach the root namespace and nothing it makes outlives it. Exits 77 (skipped) without root.
nftpol_reexec_in_netns() {
  [ -n "${NFTPOL_IN_NETNS:-}" ] && return 0
  [ "$(id -u)" = 0 ] || { echo "skipped: needs root for network namespaces"; exit 77; }
  NFTPOL_IN_NETNS=1 exec unshare --net "$0" "$@"
}

# nftpol_add_pod NETNS HOSTLINK BRIDGE ADDRESS/PREFIX [GATEWAY]: a pod as a named network namespace with eth0,
# its host end attached to BRIDGE. The caller deletes NETNS on exit.
nftpol_add_pod() {
  local ns=$1 host=$2 bridge=$3 address=$4 gateway=${5:-}
  ip netns add "$ns"
  ip link add "$host" type veth peer name eth0 netns "$ns"
  ip link set "$host" master "$bridge" up
  ip -n "$ns" addr add "$address" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  if [ -n "$gateway" ]; then ip -n "$ns" route add default via "$gateway"; fi
}

# nftpol_remove_netns TAG: deletes every named network namespace called TAG-*, the pods a test made.
nftpol_remove_netns() {
  local ns
  for ns in $(ip netns list | awk -v t="$1-" 'index($1, t) == 1 {print $1}'); do ip netns del "$ns"; done
}

# nftpol_pod_test TAG: the frame of a test that makes pods: sets `tag` (the prefix of its namespaces), `dir` (a
# scratch directory), `pids` (background processes to kill) and the check counters, and removes all of it on exit.
nftpol_pod_test() {
  tag=$1
  dir=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  passed=0 failed=0
  trap nftpol_pod_test_cleanup EXIT
}
nftpol_pod_test_cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  nftpol_remove_netns "$tag"
  rm -rf "$dir"
}

# check DESCRIPTION COMMAND...: runs the command, prints "ok:" or "FAIL:" and counts; returns its status.
check() {
  local what=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok: $what"; else failed=$((failed + 1)); echo "FAIL: $what"; return 1; fi
}

# nftpol_count TALLY NAME: how many replies `nftpol-probe tally` counted for NAME (0 when none).
nftpol_count() { awk -v n="$2" '$1 == n {print $2}' <<< "$1" | grep . || echo 0; }
