#!/usr/bin/env bash
# render_identity.sh NFTPOL NFTPOL_GEN SOURCE_DIR [--write]: `nftpol render` of the samples, the service data
# and 50 generated clusters (single- and dual-stack, one node each) against the digests in render-digests.txt.
# The digests were written from the renderer before the one-model redesign (2026-12), so a pass means every
# table is byte-identical to what that renderer printed, except for exactly the comments the determinism fix
# changed, which are normalised here and nowhere else:
#   - the comments of peer-* and cidr-* sets (they named the first policy using the set, which the kernel
#     cannot update in place);
#   - the chain and rule comments of the service chains svc-*, ext-*, nodeport-* and ep-* (their chain
#     comments counted backends, named the traffic policy, the node port and the backend's pod, none of which
#     their names derive from).
# The closed-by-default sets and rules (node-pod-subnets-*, node-pods-*, "pod address not programmed"),
# added since, are taken out before the digest: they are new, not changed, and render_test checks them. The
# flow log's rules, newer still, are left out by --no-flow-log (render_test and kernel_check.sh check them), and
# the trace sets and rule (trace_test.sh uses them) are taken out like the closed-by-default ones, and so are
# the cluster policies' pass chains and rest maps (render_test's tracer checks them). The ingress lookups moved
# from filter-forward into a chain of their own, forward-ingress, reached by a goto that ends in
# forward-allowed (so that a cluster policy's chain can go on to them): the goto is read back as the two lookups
# it stands for, and the two chains are taken out.
# --write records the digests instead of checking them.
set -euo pipefail
nftpol=$1 gen=$2 src=$3 write=${4:-}
digests="$src/tests/render/render-digests.txt"
work=$(mktemp -d /tmp/nftpol-render-identity.XXXXXX)
trap 'rm -rf "$work"' EXIT

normalise() {
  # A blank line is held until the next line printed, so that a block taken out last leaves none before the
  # table's closing brace.
  awk '
    function emit(line) { if (blank && line != "}") print ""; blank = 0; print line }
    /^\t(set|map|chain) / { block = $2 }
    block ~ /^(node-pod(s|-subnets)|trace-(sources|destinations))-|^(ingress|egress)-(rest-|pass$)|^forward-(ingress|allowed)$/ { if ($0 ~ /^\t}/) { block = ""; skip = 1 }; next }
    skip && /^$/ { skip = 0; next }
    { skip = 0 }
    /^$/ { blank = 1; next }
    /pod address not programmed"$/ { next }
    /comment "traced by nftpol trace"$/ { next }
    block == "filter-forward" && $0 == "\t\tgoto forward-ingress" {
      emit("\t\tip daddr vmap @ingress-v4"); emit("\t\tip6 daddr vmap @ingress-v6"); next
    }
    /^\t}/ { block = "" }
    {
      if (block ~ /^(peer|cidr)-/ && $0 ~ /^\t\tcomment "/) { emit("\t\tcomment <normalised>"); next }
      if (block ~ /^(svc|ext|nodeport|ep)-/) {
        if ($0 ~ /^\t\tcomment "/) { emit("\t\tcomment <normalised>"); next }
        sub(/ comment "[^"]*"$/, "")
      }
      emit($0)
    }'
}

cases=()
render_case() {  # NAME NODE MANIFEST...
  local name=$1 node=$2
  shift 2
  local args=()
  for m in "$@"; do args+=(--cluster "$m"); done
  "$nftpol" render "${args[@]}" --node "$node" --no-flow-log >"$work/$name.nft"
  echo "$name $(normalise <"$work/$name.nft" | sha256sum | cut -d' ' -f1)" >>"$work/digests"
  cases+=("$name")
}

render_case samples-node-a node-a "$src/samples/cluster"
render_case samples-node-b node-b "$src/samples/cluster"
render_case services-node-1 node-1 "$src/tests/nft/data/services.yaml"
render_case protocols-node-1 node-1 "$src/tests/nft/data/protocols.yaml"
for seed in $(seq 1 50); do
  stack=()
  [ $((seed % 2)) = 0 ] && stack=(--dual-stack)
  "$gen" --pods $((100 + seed * 20)) --namespaces $((2 + seed % 7)) --policies $((10 + seed * 4)) --seed "$seed" \
    "${stack[@]}" >"$work/cluster-$seed.yaml"
  render_case "generated-$seed" "node-$((seed % 50))" "$work/cluster-$seed.yaml"
done

if [ "$write" = --write ]; then
  cp "$work/digests" "$digests"
  echo "wrote ${#cases[@]} digests to $digests"
  exit 0
fi
if ! diff -u "$digests" "$work/digests"; then
  echo "FAIL: the tables above differ from the recorded ones (beyond the normalised comments)" >&2
  exit 1
fi
echo "render identity: ${#cases[@]} tables byte-identical to the recorded ones (normalised comments aside)"
