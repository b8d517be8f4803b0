#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "nftpol/policy/cluster.h"

namespace nftpol::policy {

using PodId =
    uint32_t;  // index into Compiled::pods(): the pods that take part, sorted by namespace then name

// A pod/namespace selector peer, resolved once for every rule that spells it the same way (same scope,
// same selectors). The enforcement layer renders each one as a named set of addresses.
struct ResolvedPeer {
  std::string description;  // "namespaceSelector team=a, podSelector app=db" or "pods app=db in ns x"
  std::vector<std::string> namespaces;  // the namespaces in scope, sorted
  std::vector<PodId> pods;              // sorted
};

// Rules that spell a selector peer the same way (same scope, same selectors) share one resolved peer: `key`
// identifies it, `description` says what it selects (and names its nftables set).
struct PeerIdentity {
  std::string key;
  std::string description;
};
PeerIdentity identify(const SelectorPeer& peer, const std::string& policyNamespace);

struct CompiledPeer {
  enum class Kind : uint8_t { kSelector, kIpBlock };
  Kind kind;
  uint32_t id;  // into Compiled::resolvedPeer() or Compiled::ipBlock()
};

struct CompiledRule {
  uint32_t policy;  // into Compiled::policies()
  Direction direction;
  uint32_t index;  // position in spec.ingress or spec.egress
  const Rule* rule;
  std::vector<CompiledPeer> peers;  // parallel to rule->peers; empty means every peer

  std::string name() const;  // "ingress[0]"
};

struct CompiledPolicy {
  const NetworkPolicy* policy;
  std::vector<PodId> selected;
  std::vector<uint32_t> ingressRules;  // into Compiled::rules(); only when the policy has policyType Ingress
  std::vector<uint32_t> egressRules;
};

// A protocol and an inclusive port range; 0-65535 means every port of the protocol.
struct PortMatch {
  Protocol protocol = Protocol::kTCP;
  uint16_t first = 0;
  uint16_t last = 65535;
  bool allPorts() const { return first == 0 && last == 65535; }
  bool operator==(const PortMatch&) const = default;
};

// A named port of an egress rule, resolved on one destination pod.
struct NamedPortTarget {
  PodId pod;
  Protocol protocol;
  uint16_t port;
  bool operator==(const NamedPortTarget&) const = default;
};

// One entry of a pod's allowed set in one direction, flattened for rendering: traffic with these peers on
// these ports is admitted by `rule` (and so by its policy). Named ports are already resolved: in ingress on
// the pod itself, into `ports`; in egress on each destination pod, into `namedTargets`.
struct Allowance {
  uint32_t rule;                    // into Compiled::rules()
  bool allPeers = false;            // the rule names no peer: every address, inside the cluster or not
  std::vector<CompiledPeer> peers;  // otherwise these selector sets and ipBlocks
  bool allPorts = false;            // the rule names no port: every protocol and port
  std::vector<PortMatch> ports;
  std::vector<NamedPortTarget>
      namedTargets;  // egress only: (destination, protocol, port), destination in peers
};

// Where a rule's ports admit a connection: the index of the matching `ports` entry, or kAllPorts when the
// rule lists no ports.
constexpr int kAllPorts = -1;

// The compiled policy: for every pod, which policies isolate it in each direction, and for every rule its
// resolved peers. Holds pointers into the ClusterState, which must outlive it.
class Compiled {
 public:
  static Compiled build(const ClusterState& state);

  const ClusterState& state() const { return *state_; }
  const std::vector<const Pod*>& pods() const { return pods_; }
  const Pod& pod(PodId id) const { return *pods_[id]; }
  std::optional<PodId> findPod(const std::string& ns, const std::string& name) const;
  std::optional<PodId> podByAddress(const IpAddress& ip) const;

  const std::vector<CompiledPolicy>& policies() const { return policies_; }
  std::optional<uint32_t> findPolicy(const std::string& ns, const std::string& name) const;
  const std::vector<CompiledRule>& rules() const { return rules_; }
  const ResolvedPeer& resolvedPeer(uint32_t id) const { return peers_[id]; }
  size_t resolvedPeerCount() const { return peers_.size(); }
  const IpBlock& ipBlock(uint32_t id) const { return blocks_[id]; }
  size_t ipBlockCount() const { return blocks_.size(); }

  // The policies (ids, sorted by namespace/name) that select the pod with that policy type.
  std::span<const uint32_t> isolating(PodId pod, Direction d) const;
  bool isolated(PodId pod, Direction d) const { return !isolating(pod, d).empty(); }

  // Does this peer of a rule match the pod (using its address of family f for ipBlocks)?
  bool peerMatches(const CompiledPeer& peer, PodId pod, Family f) const;
  // ... or an address outside the cluster (only ipBlocks can match those).
  bool peerMatches(const CompiledPeer& peer, const IpAddress& external) const;
  // Which port entry admits (protocol, port) on the destination: `dst` is the destination pod, or nullptr for
  // an address outside the cluster, where named ports never match. nullopt when none does.
  std::optional<int> portMatch(const CompiledRule& rule, Protocol protocol, uint16_t port,
                               const Pod* dst) const;

  // The pod's allowed set in one direction, one entry per rule of the policies isolating it (empty when the
  // pod is isolated and nothing is allowed; meaningless when it is not isolated — see isolated()).
  std::vector<Allowance> allowances(PodId pod, Direction d) const;

 private:
  const ClusterState* state_ = nullptr;
  std::vector<const Pod*> pods_;
  std::vector<std::pair<IpAddress, PodId>> byAddress_;  // sorted
  std::vector<CompiledPolicy> policies_;
  std::vector<CompiledRule> rules_;
  std::vector<ResolvedPeer> peers_;
  std::vector<IpBlock> blocks_;
  // Per pod and direction, a slice of isolatingPolicies_ (compressed rows:
  // offsets_[d][pod]..offsets_[d][pod+1]).
  std::vector<uint32_t> offsets_[2];
  std::vector<uint32_t> isolatingPolicies_[2];
};

}  // namespace nftpol::policy
