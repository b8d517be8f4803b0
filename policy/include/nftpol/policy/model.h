#pragma once

// The one compiled form of NetworkPolicy, kept up to date from object changes. Everything that decides who
// may talk to whom lives here and nowhere else: which policies select a pod, which pods a peer resolves to,
// and each isolated pod's allowances with named ports resolved. The controller's renderer and the simulator
// (through Compiled, a numbered snapshot of it) read the same model, so they agree by construction.
//
// A change names one object's new version (or its absence) and costs what it touches: a pod is tested
// against the shared peers, a policy resolves only the peers it brings, a namespace relabel re-tests that
// namespace's pods. What a run of changes may have altered is collected in Dirty for whoever keeps something
// derived (the renderer), which takes it with takeDirty().

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "nftpol/policy/cluster.h"
#include "nftpol/policy/services.h"

namespace nftpol::policy {

// Pods and policies are listed by namespace, then name, everywhere.
struct ObjectName {
  std::string ns;
  std::string name;
  auto operator<=>(const ObjectName&) const = default;
  static ObjectName of(const std::string& key);  // "ns/name"
  std::string key() const { return ns + "/" + name; }
};
struct PodOrder {
  bool operator()(const Pod* a, const Pod* b) const;
};
// Pods by identity, in no meaningful order (sort with PodOrder where order shows): a vector sorted by
// address, so that a peer of ten thousand pods is one allocation, not ten thousand.
class PodSet {
 public:
  bool insert(const Pod* p);  // false when it was there
  bool erase(const Pod* p);   // false when it was not
  bool contains(const Pod* p) const { return std::binary_search(pods_.begin(), pods_.end(), p); }
  void assign(std::vector<const Pod*> pods);  // any order, repeats allowed
  size_t size() const { return pods_.size(); }
  bool empty() const { return pods_.empty(); }
  auto begin() const { return pods_.begin(); }
  auto end() const { return pods_.end(); }

 private:
  std::vector<const Pod*> pods_;
};

// A pod/namespace selector peer, resolved once for every rule that spells it the same way (same scope, same
// selectors): `key` identifies it, `description` says what it selects (and names its nftables sets).
struct SharedPeer {
  std::string key;
  std::string description;  // "namespaces {team=a}, pods {app=db}" or "namespace x, pods {app=db}"
  SelectorPeer selector;
  std::string scope;  // the policy's namespace, which a peer without namespaceSelector selects in
  PodSet members;     // pods that take part
};

struct PeerIdentity {
  std::string key;
  std::string description;
};
PeerIdentity identify(const SelectorPeer& peer, const std::string& policyNamespace);

using PortMatch = PortRange;
// The ports of an entry that names them by number (every port of the protocol, or a range); nullopt for a
// named port, which resolves on a pod.
std::optional<PortMatch> numericPorts(const PortSpec& spec);

// The port entry admits (protocol, port) on the destination pod `dst` (nullptr: an address outside the
// cluster, where a named port never matches). The one place a named port is resolved for a connection.
bool portAdmits(const PortSpec& spec, Protocol protocol, uint16_t port, const Pod* dst);

// A named port of an egress rule, resolved on one destination pod.
struct NamedPortTarget {
  const Pod* pod;
  Protocol protocol;
  uint16_t port;
};

// One peer of a rule: a shared selector peer, or an ipBlock (into the policy).
using PeerRef = std::variant<const SharedPeer*, const IpBlock*>;

// One entry of a pod's allowed set in one direction: traffic with these peers on these ports is admitted by
// one rule. Named ports are resolved: in ingress on the pod itself, into `ports`; in egress on each
// destination pod among the peers, into `namedTargets`. Pointers into the model: valid until its next change.
struct Allowance {
  const NetworkPolicy* policy;
  Direction direction;
  uint32_t index;                // position in spec.ingress or spec.egress
  bool allPeers = false;         // the rule names no peer: every address, inside the cluster or not
  std::vector<PeerRef> peers;    // otherwise these, in the rule's order
  bool allPorts = false;         // the rule names no port: every protocol and port
  std::vector<PortMatch> ports;  // numeric ports and ranges, and ingress named ports resolved on the pod
  std::vector<NamedPortTarget> namedTargets;  // egress, by destination pod

  const Rule& rule() const { return policy->rules(direction)[index]; }
  std::string name() const;  // "ingress[0]"
};

// A named port of a cluster policy's egress rule, resolved on one address of a destination pod (a networks
// peer may hold one of a pod's addresses and not the other).
struct NamedAddress {
  IpAddress address;
  Protocol protocol;
  uint16_t port;
};

// One rule of a cluster policy for a pod of its subject, resolved as Allowance resolves a NetworkPolicy rule:
// what its peers hold and its ports, named ones resolved (ingress on the pod, egress on each destination pod
// among the peers). Pointers into the model: valid until its next change.
struct ClusterRuleMatch {
  const ClusterNetworkPolicy* policy;
  Direction direction;
  uint32_t index;                       // position in spec.ingress or spec.egress
  bool deniesAll = false;               // fails closed (ClusterRule::deniesAll): matches every connection
  std::vector<const SharedPeer*> pods;  // namespaces and pods peers
  std::vector<Cidr> networks;
  std::vector<const NodesPeer*> nodes;  // their addresses: Model::nodeAddresses
  bool allPorts = false;                // every protocol and port
  std::vector<PortMatch> ports;         // numeric, and ingress named ports resolved on the pod
  std::vector<NamedAddress> namedTargets;

  const ClusterRule& rule() const { return policy->rules(direction)[index]; }
  std::string name() const;  // "ingress[0]"
};

// What changes since the last takeDirty() may have altered.
struct Dirty {
  std::set<std::string> pods;   // pods (any node) whose isolation or allowances may differ
  std::set<std::string> peers;  // shared peers that came, went, or whose members or their addresses changed
  bool namedTargets = false;    // a destination of named egress ports may differ: every such allowance
  std::set<std::string> services;  // services whose resolution may differ
  bool clusterPolicies = false;    // a cluster policy, or a Node a nodes peer reads, changed
  // Those cluster policies ("cnp/name"): set again (added, changed, removed), or their nodes peers may read
  // other addresses. Their subjects' pods are not in `pods` for that: which pods a policy applies to, old and
  // new, is for the reader to find (a policy over every namespace would name every pod).
  std::set<std::string> clusterPolicyKeys;
  bool empty() const {
    return pods.empty() && peers.empty() && !namedTargets && services.empty() && !clusterPolicies &&
           clusterPolicyKeys.empty();
  }
};

class Model {
 public:
  Model();
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  // Every object of `state` once, copied (namespaces and pods first, so that each peer is resolved once).
  // Reports nothing dirty: whoever reads it starts from scratch.
  static Model of(const ClusterState& state);
  // The same without copies: the model points into `state`, which must outlive it unchanged (later changes
  // given to the model are copied as usual).
  static Model view(const ClusterState& state);

  // The object's new version, or nullptr when it is gone. A Namespace that is not given is implied (only
  // its kubernetes.io/metadata.name label), as the loader implies it.
  void setNamespace(const std::string& name, const Namespace* ns);
  void setPod(const std::string& key, const Pod* pod);  // key "ns/name"
  void setPolicy(const std::string& key, const NetworkPolicy* policy);
  void setService(const std::string& key, const Service* service);
  void setEndpointSlice(const std::string& key, const EndpointSlice* slice);
  void setClusterPolicy(const std::string& key, const ClusterNetworkPolicy* policy);  // key "cnp/name"
  void setNode(const std::string& name, const Node* node);
  // The version `state` holds of the named object (gone when it holds none).
  void take(const ClusterState& state, const ObjectRef& ref);

  Dirty takeDirty();

  // --- reading

  // Pods that take part in NetworkPolicy (with an address, not host-network, not finished), in order.
  const std::map<ObjectName, const Pod*>& pods() const;
  const Pod* findPod(const std::string& key) const;
  // Policies, in order.
  const std::map<ObjectName, const NetworkPolicy*>& policies() const;

  // The pods a policy selects, in no order.
  std::vector<const Pod*> selected(const NetworkPolicy& policy) const;
  // isolating(), with the policies in audit mode counted as enforced: what would isolate the pod.
  std::vector<const NetworkPolicy*> isolatingAsEnforced(const Pod& pod, Direction d) const;
  // The policies selecting the pod with that policy type, in order. Empty: the pod is not isolated that way.
  std::vector<const NetworkPolicy*> isolating(const Pod& pod, Direction d) const;
  // The pod's allowed set in direction d: one entry per rule of the policies isolating it, in order, without
  // rules whose only ports are names that resolve nowhere (they admit nothing).
  std::vector<Allowance> allowances(const Pod& pod, Direction d) const;
  // The same, given isolating(pod, d) already found.
  std::vector<Allowance> allowances(const Pod& pod, Direction d,
                                    const std::vector<const NetworkPolicy*>& isolating) const;

  // Cluster policies in evaluation order: the Admin tier by precedence (priority, then key), then Baseline.
  const std::vector<const ClusterNetworkPolicy*>& clusterPolicies() const;
  // Every cluster policy whose subject holds the pod, of both tiers, in evaluation order.
  std::vector<const ClusterNetworkPolicy*> clusterPoliciesOf(const Pod& pod) const;
  // The same, from what it was when only some cluster policies changed since (the pod, its namespace and the
  // other policies did not): `kept`, those of its earlier ones that did not change (a policy's pointer stays
  // valid until it is set again), and `changed`, the changed ones as they are now. A change of one policy
  // costs the length of the pod's list, not the number of cluster policies.
  std::vector<const ClusterNetworkPolicy*> clusterPoliciesOf(
      const Pod& pod, std::vector<const ClusterNetworkPolicy*> kept,
      const std::vector<const ClusterNetworkPolicy*>& changed) const;
  // The cluster policy `key` ("cnp/name"), or nullptr; and whether its subject holds the pod.
  const ClusterNetworkPolicy* findClusterPolicy(const std::string& key) const;
  bool subjectHolds(const ClusterNetworkPolicy& p, const Pod& pod) const;
  // A number that changes whenever the cluster policy `key` is set again (never reused, 0 for none): what a
  // cache of something made from the policy compares.
  uint64_t clusterPolicyRevision(const std::string& key) const;
  // The rules of one of them in direction d, in order, without the rules that can match nothing (an Accept
  // whose peers this version cannot read or enforce, ports that are names resolving nowhere).
  std::vector<ClusterRuleMatch> clusterRules(const Pod& pod, Direction d,
                                             const ClusterNetworkPolicy& p) const;
  // The addresses (status.addresses) of the Nodes the selector matches, sorted.
  std::vector<IpAddress> nodeAddresses(const LabelSelector& selector) const;

  // The shared peer a selector peer resolves to: `selector` is one in a rule of a policy the model holds
  // (one of policies() or clusterPolicies(), or a cluster policy's subject), by address.
  const SharedPeer& peer(const SelectorPeer& selector) const;
  const SharedPeer* findPeer(const std::string& key) const;
  // The namespaces a peer selects in, by name.
  std::vector<std::string> namespacesOf(const SharedPeer& peer) const;

  // Services and their slices, as given.
  const ClusterState& serviceObjects() const;
  // One service's ports resolved against its slices; a pod whose named port it read makes it dirty when the
  // pod changes.
  Services resolveService(const Service& service) const;

 private:
  static Model load(const ClusterState& state, bool borrow);
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace nftpol::policy
