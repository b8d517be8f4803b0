#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "nftpol/policy/model.h"

namespace nftpol::policy {

using PodId =
    uint32_t;  // index into Compiled::pods(): the pods that take part, sorted by namespace then name

// A shared peer of the model, with its pods numbered.
struct ResolvedPeer {
  const SharedPeer* shared;
  std::string description;  // "namespaces {team=a}, pods {app=db}" or "namespace x, pods {app=db}"
  std::vector<PodId> pods;  // sorted
};

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

// A cluster policy, numbered: its subjects, and for each selector peer of its rules the resolved peer.
struct CompiledClusterPolicy {
  static constexpr uint32_t kNotSelector = UINT32_MAX;
  const ClusterNetworkPolicy* policy;
  std::vector<PodId> subjects;  // sorted
  // [direction][rule][peer]: into Compiled::resolvedPeer(), or kNotSelector for networks, nodes, domain names
  // and unknown peers.
  std::vector<std::vector<uint32_t>> peerIds[2];
};

// Where a rule's ports admit a connection: the index of the matching `ports` entry, or kAllPorts when the
// rule lists no ports.
constexpr int kAllPorts = -1;

// The model at one moment, numbered for the simulator: pods get ids (in namespace/name order), rules and
// peers get ids, and for every pod the policies isolating it in each direction are listed. Every answer in
// it is the model's (who a policy selects, whom a peer resolves to, what a pod is allowed); the numbering is
// what lets the matrix run on bitsets. Holds pointers into the ClusterState, which must outlive it.
class Compiled {
 public:
  static Compiled build(const ClusterState& state);

  const ClusterState& state() const { return *state_; }
  const Model& model() const { return model_; }
  const std::vector<const Pod*>& pods() const { return pods_; }
  const Pod& pod(PodId id) const { return *pods_[id]; }
  std::optional<PodId> findPod(const std::string& ns, const std::string& name) const;
  std::optional<PodId> podByAddress(const IpAddress& ip) const;

  const std::vector<CompiledPolicy>& policies() const { return policies_; }
  std::optional<uint32_t> findPolicy(const std::string& ns, const std::string& name) const;
  const std::vector<CompiledRule>& rules() const { return rules_; }
  const ResolvedPeer& resolvedPeer(uint32_t id) const { return peers_[id]; }
  size_t resolvedPeerCount() const { return peers_.size(); }
  // The namespaces a resolved peer selects in, by name.
  std::vector<std::string> namespacesOf(uint32_t peer) const {
    return model_.namespacesOf(*peers_[peer].shared);
  }
  const IpBlock& ipBlock(uint32_t id) const { return blocks_[id]; }
  size_t ipBlockCount() const { return blocks_.size(); }

  // The policies (ids, sorted by namespace/name) that select the pod with that policy type.
  std::span<const uint32_t> isolating(PodId pod, Direction d) const;
  bool isolated(PodId pod, Direction d) const { return !isolating(pod, d).empty(); }

  // Cluster policies in evaluation order (Model::clusterPolicies()).
  const std::vector<CompiledClusterPolicy>& clusterPolicies() const { return clusterPolicies_; }
  std::optional<uint32_t> findClusterPolicy(const std::string& key) const;  // "cnp/name"
  // The cluster policies of tier t whose subject holds the pod and that have rules in d, in evaluation order.
  const std::vector<uint32_t>& tier(PodId pod, Direction d, Tier t) const {
    return tiers_[static_cast<int>(d)][static_cast<int>(t)][pod];
  }
  // Does peer `peer` of rule `rule` (direction d) of cluster policy `policy` match the pod (by its address of
  // family f for networks), or an address outside the cluster? Domain names and unknown peers match nothing.
  bool clusterPeerMatches(uint32_t policy, Direction d, uint32_t rule, uint32_t peer, PodId pod,
                          Family f) const;
  bool clusterPeerMatches(uint32_t policy, Direction d, uint32_t rule, uint32_t peer,
                          const IpAddress& external) const;

  // Does this peer of a rule match the pod (using its address of family f for ipBlocks)?
  bool peerMatches(const CompiledPeer& peer, PodId pod, Family f) const;
  // ... or an address outside the cluster (only ipBlocks can match those).
  bool peerMatches(const CompiledPeer& peer, const IpAddress& external) const;
  // Which port entry admits (protocol, port) on the destination: `dst` is the destination pod, or nullptr for
  // an address outside the cluster, where named ports never match. nullopt when none does.
  std::optional<int> portMatch(const CompiledRule& rule, Protocol protocol, uint16_t port,
                               const Pod* dst) const;

  // The pod's allowed set in one direction (the model's; see Model::allowances).
  std::vector<Allowance> allowances(PodId pod, Direction d) const {
    return model_.allowances(*pods_[pod], d);
  }

 private:
  const ClusterState* state_ = nullptr;
  Model model_;
  std::vector<const Pod*> pods_;
  std::vector<std::pair<IpAddress, PodId>> byAddress_;  // sorted
  std::vector<CompiledPolicy> policies_;
  std::vector<CompiledRule> rules_;
  std::vector<ResolvedPeer> peers_;
  std::vector<IpBlock> blocks_;
  std::vector<CompiledClusterPolicy> clusterPolicies_;
  std::vector<std::vector<uint32_t>> tiers_[2][2];                              // [direction][tier][pod]
  std::unordered_map<const NodesPeer*, std::vector<IpAddress>> nodeAddresses_;  // sorted
  // Per pod and direction, a slice of isolatingPolicies_ (compressed rows:
  // offsets_[d][pod]..offsets_[d][pod+1]).
  std::vector<uint32_t> offsets_[2];
  std::vector<uint32_t> isolatingPolicies_[2];
};

}  // namespace nftpol::policy
