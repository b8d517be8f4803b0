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
// The chains that hand a pod on from its Admin tier chain: "ingress-pass", "egress-pass". Each looks the pod
// up in its direction's rest map (restMapName) and jumps to what decides after the Admin tier: its
// NetworkPolicy chain or its Baseline tier chain; without one, it returns and the connection is allowed.
std::string passChainName(Direction d);
std::string restMapName(Direction d, Family f);  // "ingress-rest-v4", ...
// The chain of one tier for pods with these rules in direction d, in evaluation order, first match wins:
// Accept allows (ingress: accept; egress: return, so that the destination's ingress is still checked), Deny
// drops, Pass goes on past the tier (Admin: to the direction's pass chain; Baseline: returns, allowed). An
// Admin chain that matches nothing goes on as a Pass does; a Baseline chain returns. Named from its content,
// so pods with equal rules share it; with `log`, as buildChain.
BuiltChain buildTierChain(Direction d, policy::Tier tier, const std::vector<TierRule>& rules,
                          const FlowLogOptions* log = nullptr);
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

// filter-forward; with `log`, the service mark before the verdicts, and with allowed connections logged, the
// log of what no ingress chain decided after them.
Chain baseChain(const FlowLogOptions* log = nullptr);
// The dispatch maps (ingress/egress x v4/v6, and the rest maps of the pass chains), from (map name, address,
// chain) entries in any order.
std::vector<Map> dispatchMaps(std::vector<std::tuple<std::string, IpAddress, std::string>> entries);

// The table from its parts: sets sorted by name, the base chains first (filter-forward, then the service
// ones) and then chains by name. The service parts' rejects go into filter-forward before the policy.
Table assemble(std::vector<Set> sets, std::vector<Map> maps, std::vector<Chain> chains,
               ServiceParts services = {}, const FlowLogOptions* log = nullptr);

}  // namespace nftpol::render::detail
