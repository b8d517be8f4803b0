#!/usr/bin/env bash
# Renders tables for generated clusters and fixtures and has the kernel check them, inside a network namespace
# of our own (never the root namespace): `nft -c -f` must accept each one, and after loading it, `nft list` must
# read back the same table (whitespace aside). Needs root; exits 77 (skipped) without it.
set -euo pipefail
build=$1
src=$2
[ "$(id -u)" = 0 ] || { echo "skipped: needs root for network namespaces"; exit 77; }
ns=nftpol-t-render-$$
work=$(mktemp -d /tmp/nftpol-render.XXXXXX)
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
ip netns add "$ns"
checked=0
check() {  # name, cluster paths..., then the node after --node
  local name=$1 node=$2; shift 2
  "$build/cli/nftpol" render "$@" --node "$node" > "$work/$name.nft"
  ip netns exec "$ns" nft -c -f "$work/$name.nft" || { echo "FAIL: nft -c rejected $name"; exit 1; }
  ip netns exec "$ns" nft -f "$work/$name.nft"
  ip netns exec "$ns" nft list table inet nftpol > "$work/$name.readback"
  ip netns exec "$ns" nft delete table inet nftpol
  # Whitespace aside, and element order inside each set aside: nft lists concatenated keys in an order of its
  # own (little-endian key value), which carries no meaning.
  norm() {
    tr -s ' \t\n' ' ' < "$1" |
      perl -pe 's/elements = \{([^}]*)\}/"elements = { " . join(", ", sort map { s#^\s+|\s+$##gr } split(m#,#, $1)) . " }"/ge'
  }
  if [ "$(norm "$work/$name.nft")" != "$(norm "$work/$name.readback")" ]; then
    echo "FAIL: $name reads back differently"; diff "$work/$name.nft" "$work/$name.readback" | head -20; exit 1
  fi
  checked=$((checked + 1))
}
check samples node-a --cluster "$src/samples/cluster"
check samples-subnets node-a --cluster "$src/samples/cluster" --cluster "$src/tests/nft/data/node-a.yaml"
check protocols node-1 --cluster "$src/tests/nft/data/protocols.yaml"
check services-1 node-1 --cluster "$src/tests/nft/data/services.yaml"
check services-2 node-2 --cluster "$src/tests/nft/data/services.yaml"
for seed in 1 2 3; do
  "$build/bench/nftpol-gen" --pods 600 --namespaces 20 --policies 200 --seed $seed > "$work/gen-$seed.yaml"
  "$build/bench/nftpol-gen" --pods 300 --namespaces 10 --policies 100 --seed $seed --dual-stack > "$work/dual-$seed.yaml"
  check "gen-$seed" node-$seed --cluster "$work/gen-$seed.yaml"
  check "dual-$seed" node-$seed --cluster "$work/dual-$seed.yaml"
  # Cluster policies of both tiers with every peer kind: the tier chains, pass chains and rest maps.
  "$build/bench/nftpol-gen" --pods 300 --namespaces 10 --policies 60 --cluster-policies 40 --seed $seed --dual-stack \
    > "$work/cnp-$seed.yaml"
  check "cnp-$seed" node-$seed --cluster "$work/cnp-$seed.yaml"
done
echo "kernel accepted and read back $checked rendered tables"
echo "kernel check: $checked passed, 0 failed"
[ "$checked" -gt 0 ]
