#pragma once

// The pieces of a node's table: names and their collision checks, peer and cidr sets, the chain for one
// allowed set, the dispatch maps and the assembly. NodeTable (node_table.cpp) puts them together.

#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "nftpol/nft/ruleset.h"
#include "nftpol/policy/objects.h"
#include "nftpol/render/flow_log.h"
#include "service_render.h"

namespace nftpol::render::detail {

using namespace nftpol::nft;  // the vocabulary this module renders into
using policy::Direction;

// 16 base32 digits (80 bits) of the SHA-256 of `s`, as kube-proxy's hashAndTruncate: what names derive from.
std::string contentHash(std::string_view s);
// A NameCollision: two contents (`one` and `other`, when known) under one name.
[[noreturn]] void throwCollision(const std::string& name, const std::string& one = "",
                                 const std::string& other = "");
// Records that `name` stands for `identity` (what its hash was made of); throws NameCollision when it already
// stands for another.
template <typename Map>
void claimName(Map& names, const std::string& name, const std::string& identity) {
  auto [it, inserted] = names.try_emplace(name, identity);
  if (!inserted && it->second != identity) throwCollision(name, it->second, identity);
}
// Adds `value` under `name` unless the name is taken; a taken name must hold an equal value (compared through
// the pointer when the map holds pointers), or NameCollision. Returns whether it was added. try_emplace moves
// nothing when the name is taken, so `value` can still be compared.
template <typename T>
const T& pointee(const T& v) {
  return v;
}
template <typename T>
const T& pointee(const T* v) {
  return *v;
}
template <typename Map, typename V>
bool putOnce(Map& map, const std::string& name, V&& value) {
  auto [it, inserted] = map.try_emplace(name, std::forward<V>(value));
  if (!inserted && !(pointee(it->second) == pointee(value))) throwCollision(name);
  return inserted;
}

std::string cut(std::string s, size_t max);
const char* familySuffix(Family f);  // "-v4", "-v6"

std::string mapName(Direction d, Family f);  // "ingress-v4", ...
std::string peerSetName(const std::string& peerDescription, Family f);
std::string cidrSetName(const policy::IpBlock& block, Family f);

// A set of pod addresses for a selector peer; `addresses` sorted and unique. A set's comment says what it
// holds, never which policies use it: the kernel keeps a set's comment from its creation, so a comment that
// named a user would go stale when that user went (the rules that use the set name their policies).
Set peerSet(const std::string& description, Family f, const std::vector<IpAddress>& addresses);
Set cidrSet(const policy::IpBlock& block, Family f);

// One rule of a policy isolating the pod, as the chain builder consumes it: the peers as set names (in the
// rule's peer order, v4 before v6), the ports with names resolved, and the named-port destinations of egress
// rules as (address, IP protocol, port).
struct RuleAllowance {
  std::string policyKey;  // "ns/name"
  std::string ruleName;   // "ingress[0]"
  bool allPeers = false;
  std::vector<std::pair<Family, std::string>> peerSets;
  bool allPorts = false;
  std::vector<PortRange> ports;
  std::vector<std::tuple<IpAddress, uint8_t, uint16_t>> named;
};

struct BuiltChain {
  Chain chain;
  std::vector<Set> namedSets;  // the named-port sets its rules use
};
// The chain for pods with these allowances in direction d; `isolatedBy` are the isolating policies' keys in
// order. Its name derives from its content, so pods with equal allowed sets share it. With `log`, a log rule
// goes before its default deny (and, when allowed connections are logged, before each ingress accept); the
// name is the same with and without them.
BuiltChain buildChain(Direction d, const std::vector<RuleAllowance>& allowances,
                      const std::vector<std::string>& isolatedBy, const FlowLogOptions* log = nullptr);

// One rule of a cluster policy as a tier chain consumes it: its peers as set names, its ports, and the named
// ports of an egress rule resolved as (address, IP protocol, port). `deniesAll`: it fails closed and matches
// every connection.
struct TierRule {
  std::string policyKey;  // "cnp/name"
  std::string ruleName;   // "ingress[0]"
  policy::Action action = policy::Action::kDeny;
  bool deniesAll = false;
  std::vector<std::pair<Family, std::string>> peerSets;
  bool allPorts = false;
  std::vector<PortRange> ports;
  std::vector<std::tuple<IpAddress, uint8_t, uint16_t>> named;
};
// The chains that hand a pod on from its Admin tier: "ingress-pass", "egress-pass". Each looks the pod up in
// its direction's rest map (restMapName) and jumps to what decides after the Admin tier: its NetworkPolicy
// chain or its Baseline tier chain; without one, or when that allows, it goes on as allowed (ingress: to
// forward-allowed; egress: to forward-ingress).
std::string passChainName(Direction d);
std::string restMapName(Direction d, Family f);  // "ingress-rest-v4", ...
// filter-forward's ingress half ("forward-ingress": the destination's dispatch), and what accepts an allowed
// connection that no ingress chain of the node accepted ("forward-allowed", with the allowed logs). Chains of
// their own, so that a decision made in a chain nested in the tiers goes on by goto: a return there would
// only go back one level.
std::string forwardIngressChainName();
std::string forwardAllowedChainName();

// The tiers. A pod's tier chain in a direction (its class chain: pods with the same cluster policies share
// it) jumps to the chain of each of its cluster policies in evaluation order; a policy's chain holds that
// policy's rules, first match wins, and ends every match with a final verdict or a goto out of the tier:
// Accept allows (ingress: accept; egress: goto forward-ingress, so that the destination's ingress still
// decides), Deny drops, Pass leaves the tier (Admin: goto the direction's pass chain; Baseline: allowed). No
// match returns to the class chain and the next policy; after the last, an Admin class chain goes on as a
// Pass does and a Baseline one allows.
//
// A policy's chain is named by the policy (and, on ingress, by the pod's named ports when its rules name
// ports: `podPorts`, else empty), not by its content: an edit of the policy rewrites that chain in place, and
// a change of which policies apply to a pod touches only class chains. Its log prefixes carry the name's
// hash.
std::string policyChainName(Direction d, policy::Tier tier, const std::string& policyKey,
                            const std::string& podPorts);
BuiltChain buildPolicyChain(Direction d, policy::Tier tier, const std::vector<TierRule>& rules,
                            const std::string& policyKey, const std::string& podPorts,
                            const FlowLogOptions* log = nullptr);
// The class chain over these policy chains, named by the class's first `member` (a pod key), not by its
// content: a policy added to the class, removed from it or moved within it edits the chain in place (a jump
// inserted or deleted), and no pod is dispatched anew.
Chain buildClassChain(Direction d, policy::Tier tier, const std::vector<std::string>& policyChains,
                      const std::string& member);
// A set of Node addresses, for a nodes peer: "nodes-<hash of the selector>-v4".
std::string nodesSetName(const std::string& selector, Family f);
Set nodesSet(const std::string& selector, Family f, const std::vector<IpAddress>& addresses);

// Audit mode. The audit chain of pods whose policies, those in audit mode counted as enforced, allow these
// `allowances`: what they would allow goes on (accept on ingress, return on egress) as the enforced chain
// would have let it, and the rest is logged as would-deny and goes on too: an audit chain never denies.
BuiltChain buildAuditChain(Direction d, const std::vector<RuleAllowance>& allowances,
                           const std::vector<std::string>& isolatedBy, const FlowLogOptions& log);
// The chain a pod in audit mode is dispatched to: its enforced chain (none: not isolated, everything
// allowed) with each allowing verdict replaced by a goto to the audit chain, so that only what the enforced
// policies allow meets it; what they deny is still dropped (and logged) here.
BuiltChain divertToAudit(Direction d, const BuiltChain* enforced, const std::string& audit,
                         const FlowLogOptions& log);

// The closed-by-default pair of one family: this node's pod subnets, and the addresses of the node's pods
// that are programmed. An address of the first that is not in the second is dropped both ways, so a pod
// whose address the controller has not yet bound (or no longer binds) is never open.
std::string podSubnetsSetName(Family f);  // "node-pod-subnets-v4"
std::string nodePodsSetName(Family f);    // "node-pods-v4"
Set podSubnetsSet(Family f, const std::vector<Cidr>& subnets);
// What `nftpol trace` follows: source addresses, and destination address . protocol . port, each element with
// a timeout; a new connection between the two gets `meta nftrace set 1` in filter-forward.
std::string traceSourcesSetName(Family f);       // "trace-sources-v4"
std::string traceDestinationsSetName(Family f);  // "trace-destinations-v4"
std::vector<Set> traceSets();
Set nodePodsSet(Family f, std::vector<IpAddress> addresses);

// filter-forward: the replies, the closed-by-default checks and the source's egress, then goto
// forward-ingress; with `log`, the service mark before the verdicts.
Chain baseChain(const FlowLogOptions* log = nullptr);
// The dispatch maps (ingress/egress x v4/v6, and the rest maps of the pass chains), from (map name, address,
// chain) entries in any order.
std::vector<Map> dispatchMaps(std::vector<std::tuple<std::string, IpAddress, std::string>> entries);

// The table from its parts: sets sorted by name, the base chains first (filter-forward, then the service
// ones) and then chains by name. The service parts' rejects go into filter-forward before the policy.
Table assemble(std::vector<Set> sets, std::vector<Map> maps, std::vector<Chain> chains,
               ServiceParts services = {}, const FlowLogOptions* log = nullptr);

}  // namespace nftpol::render::detail
