#include "nftpol/policy/model.h"

#include <algorithm>
#include <unordered_map>

namespace nftpol::policy {

ObjectName ObjectName::of(const std::string& key) {
  auto slash = key.find('/');
  if (slash == std::string::npos) return {key, ""};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

bool PodOrder::operator()(const Pod* a, const Pod* b) const {
  return std::tie(a->ns, a->name) < std::tie(b->ns, b->name);
}

bool PodSet::insert(const Pod* p) {
  auto it = std::lower_bound(pods_.begin(), pods_.end(), p);
  if (it != pods_.end() && *it == p) return false;
  pods_.insert(it, p);
  return true;
}
bool PodSet::erase(const Pod* p) {
  auto it = std::lower_bound(pods_.begin(), pods_.end(), p);
  if (it == pods_.end() || *it != p) return false;
  pods_.erase(it);
  return true;
}
void PodSet::assign(std::vector<const Pod*> pods) {
  std::sort(pods.begin(), pods.end());
  pods.erase(std::unique(pods.begin(), pods.end()), pods.end());
  pods_ = std::move(pods);
}

PeerIdentity identify(const SelectorPeer& peer, const std::string& policyNamespace) {
  static const LabelSelector kEverything;
  const LabelSelector& podSel = peer.podSelector ? *peer.podSelector : kEverything;
  std::string pods = podSel.toString();
  if (peer.namespaceSelector) {
    std::string ns = peer.namespaceSelector->toString();
    return {"N " + ns + " | " + pods, "namespaces {" + ns + "}, pods {" + pods + "}"};
  }
  return {"S " + policyNamespace + " | " + pods, "namespace " + policyNamespace + ", pods {" + pods + "}"};
}

bool portAdmits(const PortSpec& spec, Protocol protocol, uint16_t port, const Pod* dst) {
  if (spec.protocol != protocol) return false;
  if (std::holds_alternative<PortSpec::AllPorts>(spec.port)) return true;
  if (const auto* range = std::get_if<PortSpec::Range>(&spec.port))
    return range->first <= port && port <= range->last;
  return dst && dst->namedPort(std::get<std::string>(spec.port), protocol) == port;
}

std::optional<PortMatch> numericPorts(const PortSpec& spec) {
  if (std::holds_alternative<PortSpec::AllPorts>(spec.port)) return PortMatch{spec.protocol, 0, 65535};
  if (const auto* range = std::get_if<PortSpec::Range>(&spec.port))
    return PortMatch{spec.protocol, range->first, range->last};
  return std::nullopt;
}

std::string Allowance::name() const {
  return std::string(toString(direction)) + "[" + std::to_string(index) + "]";
}

namespace {

bool hasNamedPort(const Pod& p) {
  return std::any_of(p.ports.begin(), p.ports.end(), [](const auto& cp) { return !cp.name.empty(); });
}

// The pods of one namespace and, once it is large enough to pay for itself, an inverted index over their
// labels, so that a selector with an equality requirement visits only the pods carrying that label instead
// of the whole namespace. Most namespaces hold a handful of pods, where a scan is cheaper than the index.
struct NamespaceIndex {
  using Pods = std::vector<const Pod*>;  // in no order; small, so removal by search is cheap
  static constexpr size_t kIndexFrom = 32;

  Pods pods;
  const Labels* labels = nullptr;  // the namespace's (see State::indexOf)

  static std::string labelKey(const std::string& k, const std::string& v) { return k + '\0' + v; }
  static void drop(Pods& from, const Pod* p) {
    auto it = std::find(from.begin(), from.end(), p);
    if (it == from.end()) return;
    *it = from.back();
    from.pop_back();
  }
  void add(const Pod* p) {
    pods.push_back(p);
    if (indexed_) post(p);
  }
  // `labels` are the ones the pod was added with.
  void remove(const Pod* p, const Labels& labels) {
    drop(pods, p);
    if (!indexed_) return;
    for (const auto& [k, v] : labels.items()) {
      auto it = byLabel_.find(labelKey(k, v));
      if (it == byLabel_.end()) continue;
      drop(it->second, p);
      if (it->second.empty()) byLabel_.erase(it);
    }
  }
  // The pods carrying label k=v (the index is built on first use); nullptr: too few pods to index, scan.
  const Pods* posting(const std::string& k, const std::string& v) const {
    static const Pods kNone;
    if (!indexed_) {
      if (pods.size() < kIndexFrom) return nullptr;
      indexed_ = true;
      for (const Pod* p : pods)
        post(p);
    }
    auto it = byLabel_.find(labelKey(k, v));
    return it == byLabel_.end() ? &kNone : &it->second;
  }

 private:
  void post(const Pod* p) const {
    for (const auto& [k, v] : p->labels.items())
      byLabel_[labelKey(k, v)].push_back(p);
  }
  mutable bool indexed_ = false;
  mutable std::unordered_map<std::string, Pods> byLabel_;  // "key\0value"
};

// Every peer of the policy's rules, in the directions it declares (an audited policy's too: what it would
// allow is rendered for its would-deny reports).
template <typename F>
void forEachPeer(const NetworkPolicy& p, F&& f) {
  for (Direction d : {Direction::kIngress, Direction::kEgress}) {
    if (!p.declares(d)) continue;
    for (const auto& rule : p.rules(d))
      for (const auto& peer : rule.peers)
        f(peer);
  }
}

}  // namespace

struct Model::State {
  // The objects, as pointers: into the ClusterState a view was made of, or into the copies below. A copy is
  // assigned in place when its object changes, so that member sets that point at it stay valid.
  std::map<ObjectName, const Pod*> pods;               // taking part
  std::unordered_map<std::string, const Pod*> others;  // given but taking no part: a service may read them
  std::unordered_map<std::string, Pod> podCopies;
  std::unordered_map<std::string, NamespaceIndex> byNamespace;
  std::map<std::string, const Namespace*> namespaces;
  std::unordered_map<std::string, Namespace> namespaceCopies;
  mutable std::unordered_map<std::string, Labels> implied;
  std::map<ObjectName, const NetworkPolicy*> policies;
  std::unordered_map<std::string, std::unique_ptr<NetworkPolicy>> policyCopies;
  std::unordered_map<std::string, const ClusterNetworkPolicy*>
      clusterPolicies;  // by key (ordered: `ordered`)
  std::unordered_map<std::string, std::unique_ptr<ClusterNetworkPolicy>> clusterPolicyCopies;
  std::vector<const ClusterNetworkPolicy*> ordered;  // evaluation order: Admin by precedence, then Baseline
  std::vector<const SharedPeer*> orderedSubjects;    // the subject of each, looked up once
  std::unordered_map<std::string, uint64_t> clusterPolicyRevisions;  // see Model::clusterPolicyRevision
  uint64_t lastRevision = 0;
  std::map<std::string, Node> nodes;
  std::unordered_map<std::string, SharedPeer> peers;  // by identity key
  std::unordered_map<std::string, int> peerUses;      // rules naming each peer
  // Each selector peer of a held policy's rules (by address, in the policy) to the shared peer it names.
  std::unordered_map<const SelectorPeer*, const SharedPeer*> ofRulePeer;
  ClusterState serviceObjects;
  mutable std::unordered_map<std::string, std::set<std::string>> podReaders;  // pod -> services that read it
  Dirty dirty;
  bool quiet = false;  // loading a whole state: nobody reads what it dirties
  mutable std::unordered_map<std::string, std::vector<const NamespaceIndex*>> loadingMatches;  // see below

  void mark(std::set<std::string>& what, const std::string& key) {
    if (!quiet) what.insert(key);
  }

  const Labels& labelsOf(const std::string& ns) const {
    if (auto it = namespaces.find(ns); it != namespaces.end()) return it->second->labels;
    auto [it, inserted] = implied.try_emplace(ns);
    if (inserted) it->second = policy::namespaceLabels(ns, {});
    return it->second;
  }

  // A namespace's index, made when its first pod comes. It keeps a pointer to the namespace's labels, which
  // setNamespace renews.
  NamespaceIndex& indexOf(const std::string& ns) {
    auto [it, inserted] = byNamespace.try_emplace(ns);
    if (inserted) it->second.labels = &labelsOf(ns);
    return it->second;
  }

  // Pods of namespace `ns` matching the selector, in no order.
  std::vector<const Pod*> select(const std::string& ns, const LabelSelector& selector) const {
    auto it = byNamespace.find(ns);
    if (it == byNamespace.end()) return {};
    return select(it->second, selector);
  }
  static std::vector<const Pod*> select(const NamespaceIndex& index, const LabelSelector& selector) {
    // Candidates: the smallest posting list among single-valued In requirements.
    const NamespaceIndex::Pods* candidates = &index.pods;
    for (const auto& r : selector.requirements()) {
      if (r.op != selectors::Operator::kIn || r.values.size() != 1) continue;
      const NamespaceIndex::Pods* list = index.posting(r.key, r.values[0]);
      if (!list) break;
      if (list->size() < candidates->size()) candidates = list;
    }
    std::vector<const Pod*> out;
    for (const Pod* p : *candidates)
      if (selector.matches(p->labels)) out.push_back(p);
    return out;
  }

  bool matches(const SharedPeer& peer, const Pod& pod) const {
    if (peer.selector.namespaceSelector) {
      if (!peer.selector.namespaceSelector->matches(labelsOf(pod.ns))) return false;
    } else if (pod.ns != peer.scope) {
      return false;
    }
    return !peer.selector.podSelector || peer.selector.podSelector->matches(pod.labels);
  }

  void resolve(SharedPeer& peer) const {
    static const LabelSelector kEverything;
    const LabelSelector& podSel = peer.selector.podSelector ? *peer.selector.podSelector : kEverything;
    std::vector<const Pod*> members;
    auto add = [&](const NamespaceIndex& index) {
      auto pods = select(index, podSel);
      members.insert(members.end(), pods.begin(), pods.end());
    };
    if (!peer.selector.namespaceSelector) {
      if (auto it = byNamespace.find(peer.scope); it != byNamespace.end()) add(it->second);
    } else {
      for (const NamespaceIndex* index : namespacesMatching(*peer.selector.namespaceSelector))
        add(*index);
    }
    peer.members.assign(std::move(members));
  }

  // The namespaces (with pods) whose labels the selector matches. While loading, many peers share a
  // namespace selector (their pod selectors differ) and no namespace changes: each selector is matched
  // against every namespace once.
  std::vector<const NamespaceIndex*> namespacesMatching(const LabelSelector& selector) const {
    std::vector<const NamespaceIndex*>* cached = nullptr;
    if (quiet) {
      auto [it, inserted] = loadingMatches.try_emplace(selector.toString());
      if (!inserted) return it->second;
      cached = &it->second;
    }
    std::vector<const NamespaceIndex*> out;
    for (const auto& [ns, index] : byNamespace)
      if (selector.matches(*index.labels)) out.push_back(&index);
    if (cached) *cached = out;
    return out;
  }

  // --- pods

  void setPod(const std::string& key, const Pod* given) {
    if (auto readers = podReaders.find(key); readers != podReaders.end()) {
      if (!quiet) dirty.services.insert(readers->second.begin(), readers->second.end());
      podReaders.erase(readers);
    }
    ObjectName name = ObjectName::of(key);
    auto it = pods.find(name);
    const Pod* oldEntry = it == pods.end() ? nullptr : it->second;
    std::optional<Pod> old;  // the entry may be a copy that is assigned below
    if (oldEntry) {
      old = *oldEntry;
      byNamespace[old->ns].remove(oldEntry, old->labels);
    }
    const Pod* stored = given ? &podCopies.insert_or_assign(key, *given).first->second : nullptr;
    const Pod* now = stored && stored->takesPart() ? stored : nullptr;
    if (stored && !now)
      others.insert_or_assign(key, stored);
    else
      others.erase(key);
    const Pod* before = old ? &*old : nullptr;
    if (before || now) {
      if (now) {
        pods.insert_or_assign(name, now);
        indexOf(now->ns).add(now);
      }
      bool memberships = false;
      for (auto& [peerKey, peer] : peers) {
        bool was = before && matches(peer, *before);
        bool is = now && matches(peer, *now);
        if (!was && !is) continue;
        if (was) peer.members.erase(oldEntry);
        if (is) peer.members.insert(now);
        memberships = memberships || was != is;
        if (was != is || before->ips != now->ips) mark(dirty.peers, peerKey);
      }
      // Named egress ports resolve on destination pods: their ports and addresses, in any rule's peers.
      bool namedPorts = (before && hasNamedPort(*before)) || (now && hasNamedPort(*now));
      if (namedPorts &&
          (memberships || !before || !now || before->ports != now->ports || before->ips != now->ips))
        dirty.namedTargets = true;
      mark(dirty.pods, key);
      if (!now) {
        auto ns = byNamespace.find(before->ns);
        if (ns != byNamespace.end() && ns->second.pods.empty()) byNamespace.erase(ns);
        pods.erase(name);
      }
    }
    if (!given) podCopies.erase(key);
  }

  // --- namespaces

  void setNamespace(const std::string& name, const Namespace* now) {
    Labels before = labelsOf(name);
    if (now) {
      namespaces.insert_or_assign(name, &namespaceCopies.insert_or_assign(name, *now).first->second);
    } else {
      namespaces.erase(name);
      namespaceCopies.erase(name);
    }
    const Labels& after = labelsOf(name);
    auto index = byNamespace.find(name);
    if (index != byNamespace.end()) index->second.labels = &after;
    if (before.items() == after.items() || index == byNamespace.end()) return;
    std::set<const SharedPeer*> changed;
    for (auto& [peerKey, peer] : peers) {
      const auto& selector = peer.selector.namespaceSelector;
      if (!selector || selector->matches(before) == selector->matches(after)) continue;
      bool any = false;
      for (const Pod* pod : index->second.pods) {
        bool is = matches(peer, *pod);
        any = (is ? peer.members.insert(pod) : peer.members.erase(pod)) || any;
      }
      if (any) {
        mark(dirty.peers, peerKey);
        dirty.namedTargets = true;
        changed.insert(&peer);
      }
    }
    // A cluster policy's subject selects by namespace labels: the namespace's pods came into it or left it.
    for (const ClusterNetworkPolicy* p : ordered)
      if (changed.contains(&peerOf(p->subject))) {
        for (const Pod* pod : index->second.pods)
          mark(dirty.pods, pod->key());
        break;
      }
  }

  // --- policies

  // The shared peer of a selector held in a policy, resolved when it is the first to spell it that way.
  void acquirePeer(const SelectorPeer& sel, const std::string& scope) {
    PeerIdentity id = identify(sel, scope);
    auto [it, inserted] = peers.try_emplace(id.key);
    if (inserted) {
      SharedPeer& entry = it->second;
      entry.key = id.key;
      entry.description = std::move(id.description);
      entry.selector = sel;
      entry.scope = scope;
      resolve(entry);
      mark(dirty.peers, entry.key);
    }
    ++peerUses[it->first];
    ofRulePeer.emplace(&sel, &it->second);
  }

  void releasePeer(const SelectorPeer& sel) {
    auto named = ofRulePeer.find(&sel);
    std::string key = named->second->key;
    ofRulePeer.erase(named);
    auto uses = peerUses.find(key);
    if (--uses->second > 0) return;
    peerUses.erase(uses);
    peers.erase(key);
    mark(dirty.peers, key);
  }

  void acquire(const NetworkPolicy& p) {
    forEachPeer(p, [&](const Peer& peer) {
      if (const auto* sel = std::get_if<SelectorPeer>(&peer)) acquirePeer(*sel, p.ns);
    });
  }

  void release(const NetworkPolicy& p) {
    forEachPeer(p, [&](const Peer& peer) {
      if (const auto* sel = std::get_if<SelectorPeer>(&peer)) releasePeer(*sel);
    });
  }

  // --- cluster policies: their subjects and selector peers are shared peers like any other (their
  // namespaceSelector is always set, so no scope applies).

  template <typename F>
  static void forEachSelector(const ClusterNetworkPolicy& p, F&& f) {
    f(p.subject);
    for (Direction d : {Direction::kIngress, Direction::kEgress})
      for (const auto& rule : p.rules(d))
        for (const auto& peer : rule.peers)
          if (const auto* sel = std::get_if<SelectorPeer>(&peer)) f(*sel);
  }

  static bool evaluatedBefore(const ClusterNetworkPolicy* a, const ClusterNetworkPolicy* b) {
    if (a->tier != b->tier) return a->tier < b->tier;
    return a->precedes(*b);
  }

  void orderClusterPolicies() {
    ordered.clear();
    for (const auto& [key, p] : clusterPolicies)
      ordered.push_back(p);
    std::sort(ordered.begin(), ordered.end(), evaluatedBefore);
    orderedSubjects.clear();
    for (const ClusterNetworkPolicy* p : ordered)
      orderedSubjects.push_back(&peerOf(p->subject));
  }

  void dirtySubjects(const ClusterNetworkPolicy& p) {
    dirty.clusterPolicies = !quiet;
    if (!quiet) dirty.clusterPolicyKeys.insert(p.key());
  }

  void setClusterPolicy(const std::string& key, const ClusterNetworkPolicy* now) {
    std::unique_ptr<ClusterNetworkPolicy> copy;
    if (now) {
      copy = std::make_unique<ClusterNetworkPolicy>(*now);
      forEachSelector(*copy, [&](const SelectorPeer& sel) { acquirePeer(sel, ""); });
    }
    if (auto it = clusterPolicies.find(key); it != clusterPolicies.end()) {
      dirtySubjects(*it->second);
      forEachSelector(*it->second, [&](const SelectorPeer& sel) { releasePeer(sel); });
      clusterPolicies.erase(it);
    }
    if (copy) {
      clusterPolicies.insert_or_assign(key, copy.get());
      dirtySubjects(*copy);
      clusterPolicyCopies.insert_or_assign(key, std::move(copy));
      clusterPolicyRevisions[key] = ++lastRevision;
    } else {
      clusterPolicyCopies.erase(key);
      clusterPolicyRevisions.erase(key);
    }
    orderClusterPolicies();
  }

  void setNode(const std::string& name, const Node* now) {
    if (now)
      nodes.insert_or_assign(name, *now);
    else
      nodes.erase(name);
    // Only a nodes peer reads them.
    for (const ClusterNetworkPolicy* p : ordered)
      for (const auto& rule : p->egressRules)
        for (const auto& peer : rule.peers)
          if (std::holds_alternative<NodesPeer>(peer)) dirtySubjects(*p);
  }

  void dirtySelected(const NetworkPolicy& p) {
    if (quiet) return;
    for (const Pod* pod : select(p.ns, p.podSelector))
      dirty.pods.insert(pod->key());
  }

  void setPolicy(const std::string& key, const NetworkPolicy* now) {
    ObjectName name = ObjectName::of(key);
    auto it = policies.find(name);
    // The new version's peers first, so that a peer both versions name is kept, not resolved again.
    std::unique_ptr<NetworkPolicy> copy;
    if (now) {
      copy = std::make_unique<NetworkPolicy>(*now);
      acquire(*copy);
    }
    if (it != policies.end()) {
      dirtySelected(*it->second);
      release(*it->second);
      policies.erase(it);
    }
    if (copy) {
      policies.insert_or_assign(name, copy.get());
      dirtySelected(*copy);
      policyCopies.insert_or_assign(key, std::move(copy));
    } else {
      policyCopies.erase(key);
    }
  }

  // --- services

  void setService(const std::string& key, const Service* service) {
    if (service)
      serviceObjects.upsert(*service);
    else
      serviceObjects.remove("Service", key);
    mark(dirty.services, key);
  }

  void setEndpointSlice(const std::string& key, const EndpointSlice* slice) {
    ObjectName name = ObjectName::of(key);
    if (const auto* old = serviceObjects.findEndpointSlice(name.ns, name.name))
      mark(dirty.services, old->ns + "/" + old->serviceName);
    if (slice) {
      mark(dirty.services, slice->ns + "/" + slice->serviceName);
      serviceObjects.upsert(*slice);
    } else {
      serviceObjects.remove("EndpointSlice", key);
    }
  }

  // --- allowances

  // The destinations of a named egress port: pods among the rule's peers (every pod when it names none).
  std::vector<const Pod*> destinations(const Allowance& a) const {
    if (a.allPeers) {
      std::vector<const Pod*> out;
      for (const auto& [name, pod] : pods)
        out.push_back(pod);
      return out;
    }
    std::vector<const Pod*> inPeers;
    for (const PeerRef& ref : a.peers) {
      if (const auto* shared = std::get_if<const SharedPeer*>(&ref)) {
        inPeers.insert(inPeers.end(), (*shared)->members.begin(), (*shared)->members.end());
        continue;
      }
      const IpBlock& block = *std::get<const IpBlock*>(ref);
      for (const auto& [name, pod] : pods)
        for (const auto& ip : pod->ips) {
          const IpAddress* first = pod->address(ip.family());
          if (first && block.contains(*first)) inPeers.push_back(pod);
        }
    }
    std::sort(inPeers.begin(), inPeers.end());
    inPeers.erase(std::unique(inPeers.begin(), inPeers.end()), inPeers.end());
    std::sort(inPeers.begin(), inPeers.end(), PodOrder{});
    return inPeers;
  }

  const SharedPeer& peerOf(const SelectorPeer& selector) const { return *ofRulePeer.at(&selector); }

  std::vector<Allowance> allowances(const Pod& pod, Direction d,
                                    const std::vector<const NetworkPolicy*>& isolating) const {
    std::vector<Allowance> out;
    for (const NetworkPolicy* p : isolating) {
      const auto& rules = p->rules(d);
      for (uint32_t i = 0; i < rules.size(); ++i) {
        const Rule& rule = rules[i];
        Allowance a{.policy = p,
                    .direction = d,
                    .index = i,
                    .allPeers = rule.peers.empty(),
                    .allPorts = rule.ports.empty()};
        for (const auto& peer : rule.peers) {
          if (const auto* sel = std::get_if<SelectorPeer>(&peer))
            a.peers.emplace_back(&peerOf(*sel));
          else
            a.peers.emplace_back(&std::get<IpBlock>(peer));
        }
        std::optional<std::vector<const Pod*>> targets;  // computed once per rule, when a name needs them
        for (const PortSpec& spec : rule.ports) {
          if (auto numeric = numericPorts(spec)) {
            a.ports.push_back(*numeric);
          } else if (d == Direction::kIngress) {
            if (auto number = pod.namedPort(std::get<std::string>(spec.port), spec.protocol))
              a.ports.push_back({spec.protocol, *number, *number});
          } else {
            if (!targets) targets = destinations(a);
            for (const Pod* dst : *targets)
              if (auto number = dst->namedPort(std::get<std::string>(spec.port), spec.protocol))
                a.namedTargets.push_back({dst, spec.protocol, *number});
          }
        }
        if (a.allPorts || !a.ports.empty() || !a.namedTargets.empty()) out.push_back(std::move(a));
      }
    }
    return out;
  }
};

Model::Model() : s_(std::make_unique<State>()) {}
Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

// Into empty maps in key order, each insertion at the end: what the set functions would do one by one (no
// peer exists before the policies, and nothing is reported), at a fraction of the cost. `borrow`: point into
// `state` instead of copying.
Model Model::load(const ClusterState& state, bool borrow) {
  Model m;
  State& s = *m.s_;
  s.quiet = true;
  for (const auto& n : state.namespaces())
    s.namespaces.insert_or_assign(n.name,
                                  borrow ? &n : &s.namespaceCopies.insert_or_assign(n.name, n).first->second);
  std::vector<const Pod*> pods;
  for (const auto& p : state.pods()) {
    const Pod* entry = borrow ? &p : &s.podCopies.insert_or_assign(p.key(), p).first->second;
    if (entry->takesPart())
      pods.push_back(entry);
    else
      s.others.insert_or_assign(p.key(), entry);
  }
  if (!std::is_sorted(pods.begin(), pods.end(), PodOrder{}))  // manifests are often written in order
    std::sort(pods.begin(), pods.end(), PodOrder{});
  for (const Pod* p : pods) {
    s.pods.emplace_hint(s.pods.end(), ObjectName{p->ns, p->name}, p);
    s.indexOf(p->ns).add(p);
  }
  std::vector<const NetworkPolicy*> policies;
  for (const auto& p : state.policies()) {
    if (borrow) {
      policies.push_back(&p);
    } else {
      auto copy = std::make_unique<NetworkPolicy>(p);
      policies.push_back(copy.get());
      s.policyCopies.insert_or_assign(p.key(), std::move(copy));
    }
  }
  auto policyOrder = [](const NetworkPolicy* a, const NetworkPolicy* b) {
    return std::tie(a->ns, a->name) < std::tie(b->ns, b->name);
  };
  if (!std::is_sorted(policies.begin(), policies.end(), policyOrder))
    std::sort(policies.begin(), policies.end(), policyOrder);
  for (const NetworkPolicy* p : policies) {
    s.acquire(*p);
    s.policies.emplace_hint(s.policies.end(), ObjectName{p->ns, p->name}, p);
  }
  for (const auto& p : state.clusterPolicies())
    s.setClusterPolicy(p.key(), &p);
  for (const auto& n : state.nodes())
    s.setNode(n.name, &n);
  for (const auto& svc : state.services())
    m.setService(svc.key(), &svc);
  for (const auto& slice : state.endpointSlices())
    m.setEndpointSlice(slice.key(), &slice);
  s.quiet = false;
  s.loadingMatches.clear();
  s.dirty = Dirty{};
  return m;
}

Model Model::of(const ClusterState& state) {
  return load(state, false);
}
Model Model::view(const ClusterState& state) {
  return load(state, true);
}

void Model::setNamespace(const std::string& name, const Namespace* ns) {
  s_->setNamespace(name, ns);
}
void Model::setPod(const std::string& key, const Pod* pod) {
  s_->setPod(key, pod);
}
void Model::setPolicy(const std::string& key, const NetworkPolicy* policy) {
  s_->setPolicy(key, policy);
}
void Model::setService(const std::string& key, const Service* service) {
  s_->setService(key, service);
}
void Model::setEndpointSlice(const std::string& key, const EndpointSlice* slice) {
  s_->setEndpointSlice(key, slice);
}

void Model::setClusterPolicy(const std::string& key, const ClusterNetworkPolicy* policy) {
  s_->setClusterPolicy(key, policy);
}
void Model::setNode(const std::string& name, const Node* node) {
  s_->setNode(name, node);
}

void Model::take(const ClusterState& state, const ObjectRef& ref) {
  if (ref.kind == "Namespace") {
    setNamespace(ref.key, state.findNamespace(ref.key));
    return;
  }
  if (ref.kind == "Node") {
    setNode(ref.key, state.findNode(ref.key));
    return;
  }
  if (ref.kind == "ClusterNetworkPolicy") {
    setClusterPolicy(ref.key, state.findClusterPolicy(ref.key));
    return;
  }
  ObjectName name = ObjectName::of(ref.key);
  if (name.name.empty()) return;
  if (ref.kind == "Pod") {
    setPod(ref.key, state.findPod(name.ns, name.name));
  } else if (ref.kind == "NetworkPolicy") {
    setPolicy(ref.key, state.findPolicy(name.ns, name.name));
  } else if (ref.kind == "Service") {
    setService(ref.key, state.findService(name.ns, name.name));
  } else if (ref.kind == "EndpointSlice") {
    setEndpointSlice(ref.key, state.findEndpointSlice(name.ns, name.name));
  }
}

Dirty Model::takeDirty() {
  return std::exchange(s_->dirty, Dirty{});
}

const std::map<ObjectName, const Pod*>& Model::pods() const {
  return s_->pods;
}
const Pod* Model::findPod(const std::string& key) const {
  auto it = s_->pods.find(ObjectName::of(key));
  return it == s_->pods.end() ? nullptr : it->second;
}
const std::map<ObjectName, const NetworkPolicy*>& Model::policies() const {
  return s_->policies;
}
std::vector<const Pod*> Model::selected(const NetworkPolicy& policy) const {
  return s_->select(policy.ns, policy.podSelector);
}

std::vector<const NetworkPolicy*> Model::isolating(const Pod& pod, Direction d) const {
  std::vector<const NetworkPolicy*> out;
  for (auto it = s_->policies.lower_bound({pod.ns, ""}); it != s_->policies.end() && it->first.ns == pod.ns;
       ++it)
    if (it->second->has(d) && it->second->podSelector.matches(pod.labels)) out.push_back(it->second);
  return out;
}

std::vector<const NetworkPolicy*> Model::isolatingAsEnforced(const Pod& pod, Direction d) const {
  std::vector<const NetworkPolicy*> out;
  for (auto it = s_->policies.lower_bound({pod.ns, ""}); it != s_->policies.end() && it->first.ns == pod.ns;
       ++it)
    if (it->second->declares(d) && it->second->podSelector.matches(pod.labels)) out.push_back(it->second);
  return out;
}

std::vector<Allowance> Model::allowances(const Pod& pod, Direction d) const {
  return s_->allowances(pod, d, isolating(pod, d));
}
std::vector<Allowance> Model::allowances(const Pod& pod, Direction d,
                                         const std::vector<const NetworkPolicy*>& isolating) const {
  return s_->allowances(pod, d, isolating);
}

const std::vector<const ClusterNetworkPolicy*>& Model::clusterPolicies() const {
  return s_->ordered;
}

uint64_t Model::clusterPolicyRevision(const std::string& key) const {
  auto it = s_->clusterPolicyRevisions.find(key);
  return it == s_->clusterPolicyRevisions.end() ? 0 : it->second;
}

std::vector<const ClusterNetworkPolicy*> Model::clusterPoliciesOf(const Pod& pod) const {
  std::vector<const ClusterNetworkPolicy*> out;
  for (size_t i = 0; i < s_->ordered.size(); ++i)
    if (s_->orderedSubjects[i]->members.contains(&pod)) out.push_back(s_->ordered[i]);
  return out;
}

std::vector<const ClusterNetworkPolicy*> Model::clusterPoliciesOf(
    const Pod& pod, std::vector<const ClusterNetworkPolicy*> kept,
    const std::vector<const ClusterNetworkPolicy*>& changed) const {
  for (const ClusterNetworkPolicy* p : changed)
    if (subjectHolds(*p, pod)) kept.push_back(p);
  std::sort(kept.begin(), kept.end(), State::evaluatedBefore);
  return kept;
}

const ClusterNetworkPolicy* Model::findClusterPolicy(const std::string& key) const {
  auto it = s_->clusterPolicies.find(key);
  return it == s_->clusterPolicies.end() ? nullptr : it->second;
}

bool Model::subjectHolds(const ClusterNetworkPolicy& p, const Pod& pod) const {
  return s_->peerOf(p.subject).members.contains(&pod);
}

std::vector<IpAddress> Model::nodeAddresses(const LabelSelector& selector) const {
  std::vector<IpAddress> out;
  for (const auto& [name, node] : s_->nodes)
    if (selector.matches(node.labels)) out.insert(out.end(), node.addresses.begin(), node.addresses.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

const SharedPeer& Model::peer(const SelectorPeer& selector) const {
  return s_->peerOf(selector);
}
const SharedPeer* Model::findPeer(const std::string& key) const {
  auto it = s_->peers.find(key);
  return it == s_->peers.end() ? nullptr : &it->second;
}

std::vector<std::string> Model::namespacesOf(const SharedPeer& peer) const {
  if (!peer.selector.namespaceSelector) return {peer.scope};
  std::vector<std::string> out;
  for (const auto& [name, ns] : s_->namespaces)
    if (peer.selector.namespaceSelector->matches(ns->labels)) out.push_back(name);
  return out;
}

const ClusterState& Model::serviceObjects() const {
  return s_->serviceObjects;
}

Services Model::resolveService(const Service& service) const {
  return Services::buildOne(s_->serviceObjects, service, [&](const std::string& ns, const std::string& name) {
    std::string key = ns + "/" + name;
    s_->podReaders[key].insert(service.key());
    if (const Pod* pod = findPod(key)) return pod;
    auto other = s_->others.find(key);
    return other == s_->others.end() ? static_cast<const Pod*>(nullptr) : other->second;
  });
}

}  // namespace nftpol::policy
