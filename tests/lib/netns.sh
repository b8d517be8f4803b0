# Shell helpers for tests and benchmarks that build nodes and pods out of network namespaces. Source it.

# Re-executes the calling script inside a network namespace of its own (`unshare --net`), so that nothing it
# programs can reach the root namespace and nothing it makes outlives it. Exits 77 (skipped) without root.
nftpol_reexec_in_netns() {
  [ -n "${NFTPOL_IN_NETNS:-}" ] && return 0
  [ "$(id -u)" = 0 ] || { echo "skipped: needs root for network namespaces"; exit 77; }
  NFTPOL_IN_NETNS=1 exec unshare --net "$0" "$@"
}

# nftpol_node_address: gives the test's node namespace an IPv4 address of its own (172.18.0.9/32 on a bridge
# link), as every real node has. Without one, once a bridge brings up an IPv6 link-local address, getaddrinfo's
# AI_ADDRCONFIG (which cpprestsdk's resolver asks for) stops resolving even "127.0.0.1": a test's API client
# then fails with "Error resolving address" until the bridge gets an IPv4 address.
nftpol_node_address() {
  ip link add nftpolnode type bridge  # no dummy module in this kernel
  ip addr add 172.18.0.9/32 dev nftpolnode
  ip link set nftpolnode up
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
# scratch directory), `pids` (background processes to stop) and the check counters, and removes all of it on
# exit. A test that ran no check fails, and so does one whose processes had to be killed.
nftpol_pod_test() {
  tag=$1
  dir=$(mktemp -d "/tmp/$1.XXXXXX")
  pids=()
  passed=0 failed=0 skipped=0
  trap nftpol_pod_test_cleanup EXIT
}
nftpol_pod_test_cleanup() {
  local status=$?
  nftpol_stop 5 "${pids[@]}" || status=1
  # A controller whose orderly shutdown hung was ended by its own watchdog: in time, but still a defect.
  if grep -rs 'event=stop-deadline' "$dir"; then
    echo "FAIL: a controller's shutdown hung until its deadline (the lines above)"
    status=1
  fi
  nftpol_remove_netns "$tag"
  rm -rf "$dir"
  if [ "$status" = 0 ] && [ $((passed + failed)) = 0 ]; then
    echo "FAIL: the test ran no check"
    status=1
  fi
  exit "$status"
}

# nftpol_alive PID: whether PID is a process that has not exited (a zombie has).
nftpol_alive() {
  local stat
  { read -r stat < "/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  [ "${stat:0:1}" != Z ]
}

# nftpol_stop SECONDS PID...: SIGTERM to each, then waits for them to exit, SECONDS at most in all; one still
# running then is killed and named in a FAIL line. Returns 1 when any had to be killed. The exit status of each
# child of this shell is left in nftpol_status[PID].
declare -A nftpol_status=()
nftpol_stop() {
  local limit=$1 p alive stuck=0 _
  shift
  local -A names=()
  for p in "$@"; do
    nftpol_alive "$p" || continue
    names[$p]=$( { tr '\0' ' ' < "/proc/$p/cmdline"; } 2>/dev/null | cut -c1-120)
    kill -TERM "$p" 2>/dev/null
  done
  for _ in $(seq $((limit * 50))); do
    alive=0
    for p in "$@"; do nftpol_alive "$p" && { alive=1; break; }; done
    [ "$alive" = 0 ] && break
    sleep 0.02
  done
  for p in "$@"; do
    if nftpol_alive "$p"; then
      echo "FAIL: process $p (${names[$p]}) did not exit within $limit s of SIGTERM; killed"
      kill -KILL "$p" 2>/dev/null
      stuck=1
    fi
    wait "$p" 2>/dev/null
    nftpol_status[$p]=$?
  done
  return "$stuck"
}

# nftpol_wait_for SECONDS COMMAND...: polls COMMAND (every 20 ms, SECONDS at most) until it succeeds.
nftpol_wait_for() {
  local limit=$1 _
  shift
  for _ in $(seq $((limit * 50))); do
    "$@" && return 0
    sleep 0.02
  done
  "$@"
}

# nftpol_listening NETNS tcp|tcp+udp PORT...: waits (bounded, 5 s) until every PORT has a listening TCP socket
# (and a bound UDP one) in NETNS ("" for the namespace this runs in): a server started in the background is
# ready.
nftpol_listening() {
  local ns=$1 protocols=$2
  shift 2
  nftpol_wait_for 5 nftpol_bound "$ns" "$protocols" "$@"
}
nftpol_bound() {
  local ns=$1 protocols=$2 sockets port
  shift 2
  sockets=$(${ns:+ip netns exec "$ns"} ss -Hlntu 2>/dev/null) || return 1
  for port in "$@"; do
    grep -qE "^tcp .*:$port[[:space:]]" <<< "$sockets" || return 1
    [ "$protocols" = tcp ] || grep -qE "^udp .*:$port[[:space:]]" <<< "$sockets" || return 1
  done
}

# nftpol_write PATH: writes standard input to PATH atomically (a temporary file beside it, then a rename), so
# that a controller watching the directory sees one whole change, never an empty or half-written file.
nftpol_write() {
  local tmp
  tmp=$(dirname "$1")/.$(basename "$1").tmp$$
  cat > "$tmp" && mv -f "$tmp" "$1"
}

# check DESCRIPTION COMMAND...: runs the command, prints "ok:" or "FAIL:" and counts; returns its status.
check() {
  local what=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "ok: $what"; else failed=$((failed + 1)); echo "FAIL: $what"; return 1; fi
}

# nftpol_count TALLY NAME: how many replies `nftpol-probe tally` counted for NAME (0 when none).
nftpol_count() { awk -v n="$2" '$1 == n {print $2}' <<< "$1" | grep . || echo 0; }

# nftpol_four_pods PROBE: the node of the packet tests, in the namespace this runs in: a bridge named $tag
# (10.244.0.1/24), bridged traffic meeting nftables, and four pods x/a x/b y/a y/b (10.244.0.11-14, network
# namespaces $tag-x-a ...) each serving TCP and UDP on ports 80 and 81 with PROBE, with their manifests
# (namespaces labelled ns=x|y, pods pod=a|b on node-1, named container ports) in $dir/m. Sets `pods`.
nftpol_four_pods() {
  local probe=$1 pod
  pods=("x a 11" "x b 12" "y a 13" "y b 14")
  ip link set lo up
  ip link add "$tag" type bridge
  ip addr add 10.244.0.1/24 dev "$tag"
  ip link set "$tag" up
  echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables  # this namespace only: bridged traffic meets nftables
  mkdir -p "$dir/m"
  cat > "$dir/m/namespaces.yaml" <<'YAML'
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: x, labels: {ns: x}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: y, labels: {ns: y}}}
YAML
  for pod in "${pods[@]}"; do
    set -- $pod
    nftpol_add_pod "$tag-$1-$2" "${tag: -6}$1$2" "$tag" "10.244.0.$3/24" 10.244.0.1
    ip netns exec "$tag-$1-$2" "$probe" serve 80 81 &
    pids+=($!)
    cat > "$dir/m/pod-$1-$2.yaml" <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $2, namespace: $1, labels: {pod: $2}}
spec:
  nodeName: node-1
  containers:
  - name: c
    ports:
    - {name: serve-80-tcp, containerPort: 80}
    - {name: serve-81-tcp, containerPort: 81}
    - {name: serve-80-udp, containerPort: 80, protocol: UDP}
status: {phase: Running, podIP: 10.244.0.$3}
YAML
  done
  for pod in "${pods[@]}"; do
    set -- $pod
    check "the servers of $1/$2 listen" nftpol_listening "$tag-$1-$2" tcp+udp 80 81
  done
}

# nftpol_blocks: a table's text (from `nft list` or `nftpol render`) as one line per block (a set, a map, a
# chain), whitespace aside, sorted: nft lists sets in the order the kernel made them, so a set that a later
# change made comes after ones whose names sort after it. The table's closing brace is left out: it ends
# whichever block comes last, which is another one in each order.
nftpol_blocks() { sed '${/^}$/d}' | awk 'BEGIN { RS = "" } { gsub(/[ \t\n]+/, " "); print }' | sort; }
