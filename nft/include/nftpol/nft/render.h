#pragma once

#include <stdexcept>
#include <string>

#include "nftpol/nft/ruleset.h"

namespace nftpol::nft {

// Names derive from content through an 80-bit hash; two different contents under one name would silently
// share one set or chain, so the renderers check that a name already taken stands for the same content and
// throw this when it does not. It cannot happen by chance (about 2^-40 at a million names) and never passes
// silently.
struct NameCollision : std::logic_error {
  using std::logic_error::logic_error;
};

// The desired `table inet nftpol` for one node: a pure function of (compiled policy, node name). Pods on the
// node are dispatched by verdict maps keyed by their addresses into per-direction chains; pods whose allowed
// sets are equal share a chain. Peers from the whole cluster live in named sets. Every name derives from
// content (a short hash plus a readable namespace/name), so the same objects always render the same table.
// Throws NameCollision (see above).
Table render(const policy::Compiled& compiled, const std::string& node);

// Layout as data: the base chains we own, as {name, type, hook, priority, policy}.
struct BaseChainSpec {
  const char* name;
  const char* type;
  const char* hook;
  int priority;
  const char* policy;
};
extern const BaseChainSpec kBaseChains[1];

// Our own chain, set and map names: "ingress-…", "egress-…", "peer-…", "cidr-…", "named-…", and the base
// chains.
bool isOwnName(const std::string& name);

}  // namespace nftpol::nft
