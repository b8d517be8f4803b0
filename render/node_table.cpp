#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "chain_builder.h"
#include "nftpol/render/render.h"

namespace nftpol::render {

using nft::AddressInSet;
using nft::Chain;
using nft::Set;
using nft::Table;
using policy::Allowance;
using policy::Direction;
using policy::Model;
using policy::Pod;

struct NodeTable::State {
  // A class of local pods in one direction and tier: the pods whose cluster policies there (those with rules
  // in that direction, in evaluation order) are the same, and, when one of them names ports on ingress, whose
  // named ports are too. Its chain jumps to its policies' chains and is named by its first member, not by its
  // content (see buildClassChain): a cluster policy that comes, goes or moves edits the chains of the classes
  // it touches in place, one jump each, and no pod is dispatched anew.
  struct ClassKey {
    Direction direction;
    policy::Tier tier;
    std::vector<uint32_t> policies;  // their ids (policyIds)
    std::string ports;               // the pods' named ports, when a policy's ingress rules name ports
    auto operator<=>(const ClassKey&) const = default;
  };
  struct Class {
    std::set<std::string> members;  // local pod keys
    std::string chain;              // "" while none of its policies has a rule that can match
    // Each policy's chain name, once found for the policy's revision (it depends on the key and on whether
    // the policy names ports).
    std::vector<std::pair<uint64_t, std::string>> policyChains;
  };
  using Classes = std::map<ClassKey, Class>;
  struct Local {
    // By Direction: the NetworkPolicy (or audit) chain it is dispatched to after its tiers ("" for none),
    // the chains held for it, and whether a NetworkPolicy isolates it (then Baseline is not consulted).
    std::string np[2];
    std::vector<std::string> held[2];
    bool isolated[2] = {false, false};
    // By Direction and Tier: its class, or none (`classes.end()`).
    Classes::iterator tier[2][2];
    std::vector<uint32_t> clusterPolicies;  // the ids of all its cluster policies, in order
    bool namedEgress = false;  // its egress NetworkPolicy rules have named ports: they depend on other pods
  };
  struct ChainEntry {
    Chain chain;
    std::vector<Set> namedSets;
    std::vector<std::string> sets;   // peer and cidr sets its rules name
    std::vector<std::string> jumps;  // a class chain's policy chains: it holds a reference on each
    uint64_t revision = 0;           // a policy chain's: the policy's revision it was built from
    int refs = 0;
  };
  // A set a chain names: a shared peer's (by key) or an ipBlock's, with what it was built from.
  struct SetSource {
    std::string peer;  // empty for a cidr set and a nodes set
    std::optional<policy::IpBlock> block;
    std::optional<policy::LabelSelector> nodes;
  };

  std::string node;
  std::optional<FlowLogOptions> flowLog;
  bool fresh = true;
  std::vector<Cidr> podSubnets;
  bool subnetsChanged = false;
  std::map<std::string, Local> local;  // local pod key -> its chains
  Classes classes;
  // Cluster policies by a small id, for the keys of classes and the lists of pods: an id stands for one key
  // for the table's life, and `policyOf` holds the model's policy for it as of the last update (nullptr once
  // gone), so that pods and classes compare and copy numbers, not names.
  std::unordered_map<std::string, uint32_t> policyIds;
  std::vector<std::string> policyKeys;                        // by id
  std::vector<const policy::ClusterNetworkPolicy*> policyOf;  // by id
  std::unordered_map<const policy::ClusterNetworkPolicy*, uint32_t> idOf;

  uint32_t intern(const std::string& key) {
    auto [it, added] = policyIds.try_emplace(key, static_cast<uint32_t>(policyKeys.size()));
    if (added) {
      policyKeys.push_back(key);
      policyOf.push_back(nullptr);
    }
    return it->second;
  }
  // The model's policies for these keys (all of them the first time): old ones forgotten before new ones are
  // taken, as a new one may live where a gone one did.
  void takePolicies(const Model& model, const std::vector<std::string>& keys) {
    std::vector<uint32_t> ids;
    for (const auto& key : keys) {
      uint32_t id = intern(key);
      if (policyOf[id]) idOf.erase(policyOf[id]);
      ids.push_back(id);
    }
    for (uint32_t id : ids) {
      policyOf[id] = model.findClusterPolicy(policyKeys[id]);
      if (policyOf[id]) idOf[policyOf[id]] = id;
    }
  }
  std::unordered_map<std::string, ChainEntry> chains;  // by name (a whole table sorts them)
  std::map<std::string, SetSource> sources;            // every peer and cidr set a chain names
  std::map<std::string, std::string> names;            // those set names -> what they were hashed from
  std::unordered_map<std::string, Set> setCache;
  std::set<std::string> stalePeers;  // peer keys whose cached sets are out of date
  bool nodesStale = false;           // the cached nodes sets may be: a Node or a cluster policy changed
  std::map<std::string, detail::ServicePiece> servicePieces;
  // Within one update: the classes whose chains are made again (their members or policies changed), and the
  // pods whose NetworkPolicy part is found again, by direction.
  std::set<Classes::iterator, bool (*)(Classes::iterator, Classes::iterator)> stale{
      [](Classes::iterator a, Classes::iterator b) { return a->first < b->first; }};
  std::set<std::pair<std::string, int>> npStale;
  // Within one update: the chains made, changed or gone, and the sets made again, which are all of the table
  // that an update without service changes patches; the policy part's set names of the table as it stands.
  std::set<std::string> changedChains;
  std::set<std::string> recomputedSets;
  std::set<std::string> namedChanged;
  // How many chains name each peer, cidr and nodes set, and the named-port sets chains hold with how many
  // hold each: kept as chains come and go, so that an update walks what changed, not every chain.
  std::map<std::string, int> setUses;
  struct NamedSet {
    Set set;
    int uses = 0;
  };
  std::map<std::string, NamedSet> namedSets;
  std::set<std::string> policySets;
  bool assembled = false;  // the table is whole (a first update assembles it)
  // Since the last takeChanges(): the names of what updates changed in the table, or all of it.
  std::set<std::string> changes;
  bool changedWhole = true;
  // Within one update: the policy chains built (each once, from the first pod that needs it; see
  // holdPolicyChain), and whether named egress ports may resolve elsewhere now.
  std::set<std::string> policyChainsBuilt;
  bool namedTargetsChanged = false;
  Table table;

  // --- chains

  std::string peerSet(const policy::PeerRef& ref, Family f) {
    std::string name, identity;
    SetSource source;
    if (const auto* shared = std::get_if<const policy::SharedPeer*>(&ref)) {
      name = detail::peerSetName((*shared)->description, f);
      identity = (*shared)->description;
      source.peer = (*shared)->key;
    } else {
      source.block = *std::get<const policy::IpBlock*>(ref);
      name = detail::cidrSetName(*source.block, f);
      identity = source.block->toString();
    }
    detail::claimName(names, name, identity);
    sources.try_emplace(name, std::move(source));
    return name;
  }

  // The rule allowances of the pod's allowed set under `isolating`, with their peer sets named.
  std::vector<detail::RuleAllowance> ruleAllowances(
      const Model& model, const Pod& pod, Direction d,
      const std::vector<const policy::NetworkPolicy*>& isolating, bool& namedEgress) {
    std::vector<detail::RuleAllowance> allowances;
    for (const Allowance& a : model.allowances(pod, d, isolating)) {
      detail::RuleAllowance r{.policyKey = a.policy->key(),
                              .ruleName = a.name(),
                              .allPeers = a.allPeers,
                              .allPorts = a.allPorts,
                              .ports = a.ports};
      if (a.allPorts || !a.ports.empty()) {
        for (const auto& peer : a.peers)
          for (Family f : {Family::kV4, Family::kV6}) {
            const auto* block = std::get_if<const policy::IpBlock*>(&peer);
            if (block && (*block)->cidr.family() != f) continue;
            r.peerSets.emplace_back(f, peerSet(peer, f));
          }
      }
      for (const auto& t : a.namedTargets)
        for (const auto& ip : t.pod->ips)
          r.named.emplace_back(ip, nft::ipProtocolNumber(t.protocol), t.port);
      allowances.push_back(std::move(r));
    }
    // A named egress port resolves on other pods (also one that resolves nowhere today).
    if (d == Direction::kEgress)
      for (const auto* p : isolating)
        for (const auto& rule : p->egressRules)
          for (const auto& port : rule.ports)
            namedEgress = namedEgress || std::holds_alternative<std::string>(port.port);
    return allowances;
  }

  static std::vector<std::string> keys(const std::vector<const policy::NetworkPolicy*>& policies) {
    std::vector<std::string> out;
    out.reserve(policies.size());
    for (const auto* p : policies)
      out.push_back(p->key());
    return out;
  }

  void fill(ChainEntry& e, detail::BuiltChain built) {
    use(e, -1);
    e.sets.clear();
    for (const auto& r : built.chain.rules)
      for (const auto& m : r.matches)
        if (const auto* in = std::get_if<AddressInSet>(&m)) e.sets.push_back(in->set);
    e.chain = std::move(built.chain);
    e.namedSets = std::move(built.namedSets);
    use(e, +1);
    changedChains.insert(e.chain.name);
  }

  // Counts a chain's sets in (+1) or out (-1): the sets it names, and the named-port sets it holds (one name
  // must stand for one content, or NameCollision).
  void use(const ChainEntry& e, int delta) {
    for (const auto& name : e.sets)
      if ((setUses[name] += delta) == 0) setUses.erase(name);
    for (const auto& set : e.namedSets) {
      auto [it, added] = namedSets.try_emplace(set.name, NamedSet{set, 0});
      if (!added && delta > 0 && !(it->second.set == set)) detail::throwCollision(set.name);
      if (added) namedChanged.insert(set.name);
      if ((it->second.uses += delta) == 0) {
        namedSets.erase(it);
        namedChanged.insert(set.name);
      }
    }
  }

  // Takes a reference on the chain (made the first time), and returns its name.
  std::string hold(detail::BuiltChain built) {
    std::string chainName = built.chain.name;
    auto [it, inserted] = chains.try_emplace(chainName);
    if (!inserted && !(it->second.chain == built.chain)) detail::throwCollision(chainName);
    if (inserted) fill(it->second, std::move(built));
    ++it->second.refs;
    return chainName;
  }

  // A policy chain is named by its policy, not by its content: the first build of an update replaces what an
  // earlier update left under the name (the policy changed since, and every pod it applies to is recomputed
  // in this update); later ones in the same update must be equal.
  void holdPolicyChain(detail::BuiltChain built, uint64_t revision) {
    std::string chainName = built.chain.name;
    auto [it, inserted] = chains.try_emplace(chainName);
    bool first = policyChainsBuilt.insert(chainName).second;
    if (inserted || (first && !(it->second.chain == built.chain)))
      fill(it->second, std::move(built));
    else if (!(it->second.chain == built.chain))
      detail::throwCollision(chainName);
    it->second.revision = revision;
    ++it->second.refs;
  }

  // Whether the policy chain an earlier update left under `name` still holds: built from the policy's current
  // revision, and not resolving named egress ports when those may have moved.
  bool policyChainHolds(const ChainEntry& e, const policy::ClusterNetworkPolicy& p, uint64_t revision) const {
    return e.revision == revision && !(namedTargetsChanged && hasNamedPort(p, Direction::kEgress));
  }

  std::string nodesSet(const policy::NodesPeer& peer, Family f) {
    std::string selector = peer.selector.toString();
    std::string name = detail::nodesSetName(selector, f);
    detail::claimName(names, name, "nodes " + selector);
    sources.try_emplace(name, SetSource{.nodes = peer.selector});
    return name;
  }

  // The rules of one cluster policy for the pod in direction d, with their peer sets named.
  std::vector<detail::TierRule> tierRules(const Model& model, const Pod& pod, Direction d,
                                          const policy::ClusterNetworkPolicy& p) {
    std::vector<detail::TierRule> out;
    for (const policy::ClusterRuleMatch& m : model.clusterRules(pod, d, p)) {
      detail::TierRule r{.policyKey = m.policy->key(),
                         .ruleName = m.name(),
                         .action = m.rule().action,
                         .deniesAll = m.deniesAll,
                         .allPorts = m.allPorts,
                         .ports = m.ports};
      for (Family f : {Family::kV4, Family::kV6}) {
        for (const policy::SharedPeer* peer : m.pods)
          r.peerSets.emplace_back(f, peerSet(peer, f));
        for (const Cidr& cidr : m.networks)
          if (cidr.family() == f) {
            policy::IpBlock block{.cidr = cidr};
            r.peerSets.emplace_back(f, peerSet(&block, f));
          }
        for (const policy::NodesPeer* nodes : m.nodes)
          r.peerSets.emplace_back(f, nodesSet(*nodes, f));
      }
      for (const auto& t : m.namedTargets)
        r.named.emplace_back(t.address, nft::ipProtocolNumber(t.protocol), t.port);
      out.push_back(std::move(r));
    }
    return out;
  }

  // Whether the policy's rules in direction d name a port. An egress one resolves on other pods (also one
  // that resolves nowhere today); an ingress one on the subject pod, so that the policy's chain then differs
  // with the pod's ports.
  static bool hasNamedPort(const policy::ClusterNetworkPolicy& p, Direction d) {
    for (const auto& rule : p.rules(d))
      for (const auto& spec : rule.ports)
        if (std::holds_alternative<std::string>(spec.port)) return true;
    return false;
  }

  // The NetworkPolicy chain a local pod is dispatched to in one direction, or "" when no policy isolates it
  // that way. With the flow log, a pod that policies in audit mode select goes through its audit chain as
  // well. Every chain it returns or makes is held for the pod.
  std::string chainFor(const Model& model, const Pod& pod, Direction d, Local& l) {
    bool& namedEgress = l.namedEgress;
    std::vector<std::string>& held = l.held[static_cast<int>(d)];
    auto isolating = model.isolating(pod, d);
    std::vector<const policy::NetworkPolicy*> asEnforced;
    if (flowLog) asEnforced = model.isolatingAsEnforced(pod, d);
    bool audited = flowLog && asEnforced != isolating;
    if (isolating.empty() && !audited) return "";
    std::optional<detail::BuiltChain> enforced;
    if (!isolating.empty())
      enforced = detail::buildChain(d, ruleAllowances(model, pod, d, isolating, namedEgress), keys(isolating),
                                    flowLog ? &*flowLog : nullptr);
    if (!audited) return held.emplace_back(hold(std::move(*enforced)));
    std::string audit = held.emplace_back(hold(detail::buildAuditChain(
        d, ruleAllowances(model, pod, d, asEnforced, namedEgress), keys(asEnforced), *flowLog)));
    return held.emplace_back(
        hold(detail::divertToAudit(d, enforced ? &*enforced : nullptr, audit, *flowLog)));
  }

  // What of a pod its ingress tier chains depend on besides which policies apply: its named ports (egress
  // ones resolve on the destinations, so there nothing).
  static std::string portsSignature(const Pod& pod, Direction d) {
    std::string out;
    if (d == Direction::kIngress)
      for (const auto& p : pod.ports)
        out +=
            p.name + "/" + std::to_string(static_cast<int>(p.protocol)) + "/" + std::to_string(p.port) + ",";
    return out;
  }

  // --- classes

  // The pod's class key in direction d and tier t among its cluster policies (`subjectOf`, with their
  // `keys`); none (no policies) when none of them has rules there.
  ClassKey classKey(const Pod& pod, Direction d, policy::Tier t,
                    const std::vector<const policy::ClusterNetworkPolicy*>& subjectOf,
                    const std::vector<uint32_t>& keys) {
    ClassKey key{d, t, {}, ""};
    bool namedPorts = false;
    for (size_t i = 0; i < subjectOf.size(); ++i) {
      const auto* p = subjectOf[i];
      if (p->tier != t || p->rules(d).empty()) continue;
      key.policies.push_back(keys[i]);
      namedPorts = namedPorts || (d == Direction::kIngress && hasNamedPort(*p, d));
    }
    if (namedPorts) key.ports = portsSignature(pod, d);
    return key;
  }

  // Moves the pod from class `c` to the class of `key` (none when it has no policies). Joining or leaving a
  // class makes its chain stale; staying in one changes nothing.
  void moveTo(const std::string& pod, Classes::iterator& c, ClassKey key) {
    if (c != classes.end() && c->first == key) return;
    if (c != classes.end()) {
      c->second.members.erase(pod);
      stale.insert(c);
      c = classes.end();
    }
    if (key.policies.empty()) return;
    c = classes.try_emplace(std::move(key)).first;
    c->second.members.insert(pod);
    stale.insert(c);
  }

  // The pod's classes found again from its cluster policies. A pod that a NetworkPolicy isolates in a
  // direction has no Baseline class there: its NetworkPolicy chain has the final answer.
  void joinClasses(const Pod& pod, Local& l,
                   const std::vector<const policy::ClusterNetworkPolicy*>& subjectOf) {
    l.clusterPolicies.clear();
    for (const auto* p : subjectOf)
      l.clusterPolicies.push_back(idOf.at(p));
    const std::string key = pod.key();
    for (Direction d : {Direction::kIngress, Direction::kEgress}) {
      int i = static_cast<int>(d);
      moveTo(key, l.tier[i][0], classKey(pod, d, policy::Tier::kAdmin, subjectOf, l.clusterPolicies));
      moveTo(key, l.tier[i][1],
             l.isolated[i] ? ClassKey{d, policy::Tier::kBaseline, {}, ""}
                           : classKey(pod, d, policy::Tier::kBaseline, subjectOf, l.clusterPolicies));
    }
  }

  void leaveClasses(const std::string& key, Local& l) {
    for (auto& byTier : l.tier)
      for (auto& c : byTier)
        moveTo(key, c, ClassKey{});
  }

  // The policy chains a class jumps to, in order, each held for it (built once an update, from the class's
  // first member; kept from an earlier update while its policy is unchanged). A policy none of whose rules
  // can match has none.
  std::vector<std::string> policyChainsOf(const Model& model, const ClassKey& key, Class& c,
                                          const Pod& member) {
    std::vector<std::string> jumps;
    Direction d = key.direction;
    c.policyChains.resize(key.policies.size());
    for (size_t i = 0; i < key.policies.size(); ++i) {
      const std::string& policyKey = policyKeys[key.policies[i]];
      const policy::ClusterNetworkPolicy* policy = policyOf[key.policies[i]];
      if (!policy) continue;  // gone: its members left the class in this update
      std::string podPorts = d == Direction::kIngress && hasNamedPort(*policy, d) ? key.ports : "";
      uint64_t revision = model.clusterPolicyRevision(policyKey);
      auto& [namedAt, name] = c.policyChains[i];
      if (namedAt != revision) {
        name = detail::policyChainName(d, key.tier, policyKey, podPorts);
        namedAt = revision;
      }
      auto built = chains.find(name);
      if (built != chains.end() &&
          (policyChainsBuilt.count(name) || policyChainHolds(built->second, *policy, revision))) {
        ++built->second.refs;
      } else {
        auto rules = tierRules(model, member, d, *policy);
        if (rules.empty())
          continue;  // every rule matches nothing (names resolving nowhere, unenforced peers)
        holdPolicyChain(
            detail::buildPolicyChain(d, key.tier, rules, policyKey, podPorts, flowLog ? &*flowLog : nullptr),
            revision);
      }
      jumps.push_back(name);
    }
    return jumps;
  }

  // Makes the stale classes' chains again: the new policy chains held first, so that one both versions use is
  // kept rather than dropped and built again; then the old class chains dropped; then the new ones made (a
  // name may pass from one class to another when a pod moves). Emptied classes go. A Baseline class whose
  // chain came or went changes whether its members' NetworkPolicy (audit) part is needed.
  void rebuildClasses(const Model& model) {
    std::vector<std::pair<Classes::iterator, std::vector<std::string>>> made;
    for (auto it : stale) {
      std::vector<std::string> jumps;
      if (!it->second.members.empty())
        jumps = policyChainsOf(model, it->first, it->second, *model.findPod(*it->second.members.begin()));
      made.emplace_back(it, std::move(jumps));
    }
    std::vector<bool> had;
    for (auto& [it, jumps] : made) {
      had.push_back(!it->second.chain.empty());
      dropChain(std::exchange(it->second.chain, ""));
    }
    for (size_t i = 0; i < made.size(); ++i) {
      auto& [it, jumps] = made[i];
      const ClassKey& key = it->first;
      Class& c = it->second;
      if (!jumps.empty()) {
        Chain chain = detail::buildClassChain(key.direction, key.tier, jumps, *c.members.begin());
        auto [entry, inserted] = chains.try_emplace(chain.name);
        if (!inserted) detail::throwCollision(chain.name);
        c.chain = chain.name;
        changedChains.insert(chain.name);
        entry->second.chain = std::move(chain);
        entry->second.jumps = std::move(jumps);  // the references policyChainsOf took are the class chain's
        entry->second.refs = 1;
      }
      if (flowLog && key.tier == policy::Tier::kBaseline && had[i] != !c.chain.empty())
        for (const auto& member : c.members)
          npStale.emplace(member, static_cast<int>(key.direction));
      if (c.members.empty()) classes.erase(it);
    }
    stale.clear();
  }

  // Whether a change of these cluster policies (`changed`, their ids) may change the pod's classes: it had
  // one of them, or one of them applies to it now.
  bool touchedBy(const Model& model, const Pod& pod, const Local& l, const std::set<uint32_t>& changed) {
    for (uint32_t id : l.clusterPolicies)
      if (changed.count(id)) return true;
    for (uint32_t id : changed)
      if (const auto* p = policyOf[id]; p && model.subjectHolds(*p, pod)) return true;
    return false;
  }

  // --- pods

  void dropChain(const std::string& name) {
    if (name.empty()) return;
    auto it = chains.find(name);
    if (--it->second.refs > 0) return;
    std::vector<std::string> jumps = std::move(it->second.jumps);
    changedChains.insert(name);
    use(it->second, -1);
    chains.erase(it);
    for (const auto& j : jumps)
      dropChain(j);
  }

  // Everything of a pod found again: its isolation, its classes, and (after the classes' chains) its
  // NetworkPolicy chains.
  void recompute(const Model& model, const std::string& key) {
    const Pod* pod = model.findPod(key);
    bool isLocal = pod && pod->nodeName == node;
    auto it = local.find(key);
    if (it != local.end()) {
      for (auto& held : it->second.held) {
        for (auto& c : held)
          dropChain(c);
        held.clear();
      }
      if (!isLocal) {
        leaveClasses(key, it->second);
        local.erase(it);
      }
    }
    if (!isLocal) return;
    if (it == local.end()) {
      it = local.try_emplace(key).first;
      for (auto& byTier : it->second.tier)
        for (auto& c : byTier)
          c = classes.end();
    }
    Local& l = it->second;
    for (Direction d : {Direction::kIngress, Direction::kEgress}) {
      int i = static_cast<int>(d);
      l.np[i].clear();
      l.isolated[i] = !model.isolating(*pod, d).empty();
      npStale.emplace(key, i);
    }
    l.namedEgress = false;
    joinClasses(*pod, l, model.clusterPoliciesOf(*pod));
  }

  // Only a pod's classes found again, when cluster policies changed and the pod did not.
  void recomputeTiers(const Model& model, const std::string& key, Local& l,
                      const std::set<uint32_t>& changed) {
    const Pod& pod = *model.findPod(key);
    std::vector<const policy::ClusterNetworkPolicy*> kept, now;
    for (uint32_t id : l.clusterPolicies)
      if (!changed.count(id)) kept.push_back(policyOf[id]);
    for (uint32_t id : changed)
      if (policyOf[id]) now.push_back(policyOf[id]);
    Classes::iterator baseline[2] = {l.tier[0][1], l.tier[1][1]};
    joinClasses(pod, l, model.clusterPoliciesOf(pod, std::move(kept), now));
    // Its audit chain depends on its Baseline class (see refreshNetworkPolicyChain): when that changed. (A
    // class whose own chain came or went is seen to in rebuildClasses.)
    if (flowLog)
      for (int i = 0; i < 2; ++i)
        if (!l.isolated[i] && l.tier[i][1] != baseline[i]) npStale.emplace(key, i);
  }

  // The pod's NetworkPolicy chain in one direction made again: held when a NetworkPolicy isolates it, or when
  // no Baseline class chain decides for it (then only an audit chain can be there).
  void refreshNetworkPolicyChain(const Model& model, const std::string& key, int i) {
    auto it = local.find(key);
    if (it == local.end()) return;
    Local& l = it->second;
    for (auto& c : l.held[i])
      dropChain(c);
    l.held[i].clear();
    Direction d = static_cast<Direction>(i);
    if (d == Direction::kEgress) l.namedEgress = false;
    auto baseline = l.tier[i][1];
    bool baselineDecides = baseline != classes.end() && !baseline->second.chain.empty();
    l.np[i] = baselineDecides ? "" : chainFor(model, *model.findPod(key), d, l);
  }

  // --- sets

  const Set& cachedSet(const Model& model, const std::string& name) {
    const SetSource& source = sources.at(name);
    auto it = setCache.find(name);
    bool stale = source.nodes ? nodesStale : !source.peer.empty() && stalePeers.count(source.peer);
    if (it != setCache.end() && !stale) return it->second;
    recomputedSets.insert(name);
    Family f = name.ends_with("-v4") ? Family::kV4 : Family::kV6;
    Set s;
    if (source.nodes) {
      s = detail::nodesSet(source.nodes->toString(), f, model.nodeAddresses(*source.nodes));
    } else if (!source.peer.empty()) {
      const policy::SharedPeer* peer = model.findPeer(source.peer);
      std::vector<IpAddress> addresses;
      for (const Pod* pod : peer->members)
        if (const IpAddress* ip = pod->address(f)) addresses.push_back(*ip);
      std::sort(addresses.begin(), addresses.end());
      addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
      s = detail::peerSet(peer->description, f, addresses);
    } else {
      s = detail::cidrSet(*source.block, f);
    }
    return setCache.insert_or_assign(name, std::move(s)).first->second;
  }

  // --- services

  void renderService(const Model& model, const std::string& key) {
    servicePieces.erase(key);
    policy::ObjectName name = policy::ObjectName::of(key);
    const policy::Service* service = model.serviceObjects().findService(name.ns, name.name);
    if (!service) return;
    policy::Services resolved = model.resolveService(*service);
    std::vector<const policy::ResolvedServicePort*> ports;
    for (const auto& p : resolved.ports())
      ports.push_back(&p);
    if (!ports.empty()) servicePieces.emplace(key, detail::renderService(ports, node));
  }

  // --- the table

  const Table& update(const Model& model, const policy::Dirty& dirty) {
    policyChainsBuilt.clear();
    namedTargetsChanged = dirty.namedTargets;
    std::set<uint32_t> changedPolicies;
    if (fresh) {
      std::vector<std::string> keys;
      for (const auto* p : model.clusterPolicies())
        keys.push_back(p->key());
      takePolicies(model, keys);
      for (const auto& [name, pod] : model.pods())
        if (pod->nodeName == node) recompute(model, name.key());
      for (const auto& service : model.serviceObjects().services())
        renderService(model, service.key());
      fresh = false;
    } else {
      if (dirty.empty() && !subnetsChanged) return table;
      std::set<std::string> pods = dirty.pods;
      if (dirty.namedTargets)
        for (const auto& [key, l] : local)
          if (l.namedEgress) pods.insert(key);
      takePolicies(model, {dirty.clusterPolicyKeys.begin(), dirty.clusterPolicyKeys.end()});
      for (const auto& key : dirty.clusterPolicyKeys)
        changedPolicies.insert(policyIds.at(key));
      for (const auto& key : pods)
        recompute(model, key);
      if (!changedPolicies.empty())
        for (auto& [key, l] : local)
          if (!pods.count(key) && touchedBy(model, *model.findPod(key), l, changedPolicies))
            recomputeTiers(model, key, l, changedPolicies);
      // The classes of a changed policy (its chain is made again), and, when named egress ports may resolve
      // elsewhere now, those of the policies that name them.
      if (!changedPolicies.empty() || dirty.namedTargets)
        for (auto it = classes.begin(); it != classes.end(); ++it)
          for (uint32_t id : it->first.policies) {
            const auto* p =
                dirty.namedTargets && it->first.direction == Direction::kEgress ? policyOf[id] : nullptr;
            if (changedPolicies.count(id) || (p && hasNamedPort(*p, Direction::kEgress))) stale.insert(it);
          }
      stalePeers.insert(dirty.peers.begin(), dirty.peers.end());
      nodesStale = dirty.clusterPolicies;
      for (const auto& key : dirty.services)
        renderService(model, key);
    }
    rebuildClasses(model);
    for (const auto& [key, i] : npStale)
      refreshNetworkPolicyChain(model, key, i);
    npStale.clear();

    auto classChain = [&](Classes::iterator c) {
      return c == classes.end() ? std::string() : c->second.chain;
    };
    std::vector<std::tuple<std::string, IpAddress, std::string>> dispatch;
    for (const auto& [key, l] : local)
      for (Direction d : {Direction::kIngress, Direction::kEgress}) {
        // The tiers in order, as the model decides them: the Admin tier's chain first; then the pod's
        // NetworkPolicy chain when a policy isolates it (its answer is final), else its Baseline tier's
        // chain.
        int i = static_cast<int>(d);
        std::string admin = classChain(l.tier[i][0]), after = classChain(l.tier[i][1]);
        if (after.empty()) after = l.np[i];
        std::string entry = admin.empty() ? after : admin, rest = admin.empty() ? "" : after;
        for (const auto& ip : model.findPod(key)->ips) {
          if (!entry.empty()) dispatch.emplace_back(detail::mapName(d, ip.family()), ip, entry);
          if (!rest.empty()) dispatch.emplace_back(detail::restMapName(d, ip.family()), ip, rest);
        }
      }
    std::vector<nft::Map> maps = detail::dispatchMaps(std::move(dispatch));
    std::vector<Set> sets;
    std::vector<IpAddress> programmed;
    for (const auto& [key, l] : local)
      for (const auto& ip : model.findPod(key)->ips)
        programmed.push_back(ip);
    for (Family f : {Family::kV4, Family::kV6}) {
      sets.push_back(detail::podSubnetsSet(f, podSubnets));
      sets.push_back(detail::nodePodsSet(f, programmed));
    }
    subnetsChanged = false;
    // Services changed (or a first update): the table is assembled whole. Otherwise what changed is patched
    // into it: the changed chains, the sets made again, the dispatch maps; everything else stays as it is,
    // not copied again.
    bool whole = !assembled || !dirty.services.empty();
    std::vector<Chain> chainList;
    if (whole)
      for (const auto& [name, e] : chains)
        chainList.push_back(e.chain);
    for (const auto& [name, named] : namedSets)
      if (whole || namedChanged.count(name) || !policySets.count(name)) sets.push_back(named.set);
    // Sets no chain names any more are forgotten, with their names.
    for (auto it = sources.begin(); it != sources.end();) {
      if (setUses.count(it->first)) {
        ++it;
        continue;
      }
      setCache.erase(it->first);
      names.erase(it->first);
      it = sources.erase(it);
    }
    for (const auto& [name, uses] : setUses) {
      const Set& s = cachedSet(model, name);
      if (whole || recomputedSets.count(name) || !policySets.count(name)) sets.push_back(s);
    }
    stalePeers.clear();
    nodesStale = false;
    std::set<std::string> nowPolicySets;
    for (const auto& s : sets)
      nowPolicySets.insert(s.name);
    for (const auto& [name, uses] : setUses)
      nowPolicySets.insert(name);
    for (const auto& [name, named] : namedSets)
      nowPolicySets.insert(name);
    if (whole) {
      // The pieces are combined straight into the table: one copy of the service part per build.
      std::vector<const detail::ServicePiece*> pieces;
      for (const auto& [key, piece] : servicePieces)
        pieces.push_back(&piece);
      table = detail::assemble(std::move(sets), std::move(maps), std::move(chainList),
                               detail::combine(std::move(pieces)), flowLog ? &*flowLog : nullptr);
      assembled = true;
      changedWhole = true;
    } else {
      changes.insert(changedChains.begin(), changedChains.end());
      for (const auto& s : sets)
        changes.insert(s.name);
      for (const auto& m : maps)
        changes.insert(m.name);
      for (const auto& name : policySets)
        if (!nowPolicySets.count(name)) changes.insert(name);
      patch(std::move(sets), std::move(maps), nowPolicySets);
    }
    policySets = std::move(nowPolicySets);
    changedChains.clear();
    recomputedSets.clear();
    namedChanged.clear();
    return table;
  }

  // Patches the table: the changed chains in their places (the chains after the base chains are in name
  // order), `sets` (the policy part's sets made again or new) over the old ones, the policy sets that are
  // gone out, and the dispatch maps over theirs.
  void patch(std::vector<Set> sets, std::vector<nft::Map> maps, const std::set<std::string>& nowPolicySets) {
    auto byName = [](const auto& a, const std::string& name) { return a.name < name; };
    auto firstPlain =
        std::find_if(table.chains.begin(), table.chains.end(), [](const Chain& c) { return !c.base; });
    size_t plain = static_cast<size_t>(firstPlain - table.chains.begin());
    for (const auto& name : changedChains) {
      auto at = std::lower_bound(table.chains.begin() + static_cast<std::ptrdiff_t>(plain),
                                 table.chains.end(), name, byName);
      bool held = at != table.chains.end() && at->name == name;
      auto e = chains.find(name);
      if (e == chains.end()) {
        if (held) table.chains.erase(at);
      } else if (held) {
        *at = e->second.chain;
      } else {
        table.chains.insert(at, e->second.chain);
      }
    }
    std::erase_if(table.sets,
                  [&](const Set& s) { return policySets.count(s.name) && !nowPolicySets.count(s.name); });
    for (auto& s : sets) {
      auto at = std::lower_bound(table.sets.begin(), table.sets.end(), s.name, byName);
      if (at != table.sets.end() && at->name == s.name)
        *at = std::move(s);
      else
        table.sets.insert(at, std::move(s));
    }
    for (auto& m : maps) {
      auto at = std::lower_bound(table.maps.begin(), table.maps.end(), m.name, byName);
      if (at != table.maps.end() && at->name == m.name) *at = std::move(m);
    }
  }
};

NodeTable::NodeTable(std::string node, std::optional<FlowLogOptions> flowLog)
    : s_(std::make_unique<State>()) {
  s_->node = std::move(node);
  s_->flowLog = flowLog;
  s_->table = detail::assemble({}, detail::dispatchMaps({}), {}, {}, flowLog ? &*flowLog : nullptr);
}
NodeTable::~NodeTable() = default;
NodeTable::NodeTable(NodeTable&&) noexcept = default;
NodeTable& NodeTable::operator=(NodeTable&&) noexcept = default;

const Table& NodeTable::update(const Model& model, const policy::Dirty& dirty) {
  return s_->update(model, dirty);
}
void NodeTable::setPodSubnets(std::vector<Cidr> subnets) {
  std::sort(subnets.begin(), subnets.end());
  subnets.erase(std::unique(subnets.begin(), subnets.end()), subnets.end());
  if (subnets == s_->podSubnets) return;
  s_->podSubnets = std::move(subnets);
  s_->subnetsChanged = true;
}
std::optional<std::set<std::string>> NodeTable::takeChanges() {
  std::optional<std::set<std::string>> out;
  if (!s_->changedWhole) out = std::move(s_->changes);
  s_->changes.clear();
  s_->changedWhole = false;
  return out;
}
const Table& NodeTable::table() const {
  return s_->table;
}
const std::string& NodeTable::node() const {
  return s_->node;
}
size_t NodeTable::localPods() const {
  return s_->local.size();
}

Table render(const Model& model, const std::string& node, std::vector<Cidr> podSubnets,
             std::optional<FlowLogOptions> flowLog) {
  NodeTable t(node, flowLog);
  t.setPodSubnets(std::move(podSubnets));
  return t.update(model, {});
}

}  // namespace nftpol::render
