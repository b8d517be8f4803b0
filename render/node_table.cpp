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
  struct Local {
    std::string chain[2];      // by Direction; empty when the pod is not isolated that way
    std::string audit[2];      // by Direction: its audit chain, when policies in audit mode select it
    bool namedEgress = false;  // its egress allowances have named ports: they depend on other pods
  };
  struct ChainEntry {
    Chain chain;
    std::vector<Set> namedSets;
    std::vector<std::string> sets;  // peer and cidr sets its rules name
    int refs = 0;
  };
  // A set a chain names: a shared peer's (by key) or an ipBlock's, with what it was built from.
  struct SetSource {
    std::string peer;  // empty for a cidr set
    std::optional<policy::IpBlock> block;
  };

  std::string node;
  std::optional<FlowLogOptions> flowLog;
  bool fresh = true;
  std::vector<Cidr> podSubnets;
  bool subnetsChanged = false;
  std::map<std::string, Local> local;  // local pod key -> its chains
  std::map<std::string, ChainEntry> chains;
  std::map<std::string, SetSource> sources;  // every peer and cidr set a chain names
  std::map<std::string, std::string> names;  // those set names -> what they were hashed from
  std::unordered_map<std::string, Set> setCache;
  std::set<std::string> stalePeers;  // peer keys whose cached sets are out of date
  std::map<std::string, detail::ServicePiece> servicePieces;
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

  // Takes a reference on the chain (made the first time), and returns its name.
  std::string hold(detail::BuiltChain built) {
    std::string chainName = built.chain.name;
    auto [it, inserted] = chains.try_emplace(chainName);
    if (!inserted && !(it->second.chain == built.chain)) detail::throwCollision(chainName);
    if (inserted) {
      ChainEntry& e = it->second;
      for (const auto& r : built.chain.rules)
        for (const auto& m : r.matches)
          if (const auto* in = std::get_if<AddressInSet>(&m)) e.sets.push_back(in->set);
      e.chain = std::move(built.chain);
      e.namedSets = std::move(built.namedSets);
    }
    ++it->second.refs;
    return chainName;
  }

  // The chain a local pod is dispatched to in one direction, or "" when no policy isolates it that way. With
  // the flow log, a pod that policies in audit mode select goes through its audit chain as well (`audit`).
  std::string chainFor(const Model& model, const Pod& pod, Direction d, bool& namedEgress,
                       std::string& audit) {
    auto isolating = model.isolating(pod, d);
    std::vector<const policy::NetworkPolicy*> asEnforced;
    if (flowLog) asEnforced = model.isolatingAsEnforced(pod, d);
    bool audited = flowLog && asEnforced != isolating;
    if (isolating.empty() && !audited) return "";
    std::optional<detail::BuiltChain> enforced;
    if (!isolating.empty())
      enforced = detail::buildChain(d, ruleAllowances(model, pod, d, isolating, namedEgress), keys(isolating),
                                    flowLog ? &*flowLog : nullptr);
    if (!audited) return hold(std::move(*enforced));
    audit = hold(detail::buildAuditChain(d, ruleAllowances(model, pod, d, asEnforced, namedEgress),
                                         keys(asEnforced), *flowLog));
    return hold(detail::divertToAudit(d, enforced ? &*enforced : nullptr, audit, *flowLog));
  }

  void dropChain(const std::string& name) {
    if (name.empty()) return;
    auto it = chains.find(name);
    if (--it->second.refs == 0) chains.erase(it);
  }

  void recompute(const Model& model, const std::string& key) {
    const Pod* pod = model.findPod(key);
    bool isLocal = pod && pod->nodeName == node;
    auto it = local.find(key);
    if (it != local.end()) {
      for (auto& c : it->second.chain)
        dropChain(c);
      for (auto& c : it->second.audit)
        dropChain(c);
      if (!isLocal) local.erase(it);
    }
    if (!isLocal) return;
    Local& l = local[key];
    l.namedEgress = false;
    for (Direction d : {Direction::kIngress, Direction::kEgress}) {
      l.audit[static_cast<int>(d)].clear();
      l.chain[static_cast<int>(d)] = chainFor(model, *pod, d, l.namedEgress, l.audit[static_cast<int>(d)]);
    }
  }

  // --- sets

  const Set& cachedSet(const Model& model, const std::string& name) {
    const SetSource& source = sources.at(name);
    auto it = setCache.find(name);
    if (it != setCache.end() && (source.peer.empty() || !stalePeers.count(source.peer))) return it->second;
    Family f = name.ends_with("-v4") ? Family::kV4 : Family::kV6;
    Set s;
    if (!source.peer.empty()) {
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
    if (fresh) {
      for (const auto& [name, pod] : model.pods())
        if (pod->nodeName == node) recompute(model, name.key());
      for (const auto& service : model.serviceObjects().services())
        renderService(model, service.key());
      fresh = false;
    } else {
      if (dirty.empty() && !subnetsChanged) return table;
      std::set<std::string> pods(dirty.pods.begin(), dirty.pods.end());
      if (dirty.namedTargets)
        for (const auto& [key, l] : local)
          if (l.namedEgress) pods.insert(key);
      for (const auto& key : pods)
        recompute(model, key);
      stalePeers.insert(dirty.peers.begin(), dirty.peers.end());
      for (const auto& key : dirty.services)
        renderService(model, key);
    }

    std::vector<std::tuple<std::string, IpAddress, std::string>> dispatch;
    for (const auto& [key, l] : local)
      for (Direction d : {Direction::kIngress, Direction::kEgress})
        if (!l.chain[static_cast<int>(d)].empty())
          for (const auto& ip : model.findPod(key)->ips)
            dispatch.emplace_back(detail::mapName(d, ip.family()), ip, l.chain[static_cast<int>(d)]);
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
    std::map<std::string, const Set*> named;
    std::set<std::string> referenced;
    std::vector<Chain> chainList;
    for (const auto& [name, e] : chains) {
      chainList.push_back(e.chain);
      referenced.insert(e.sets.begin(), e.sets.end());
      for (const auto& s : e.namedSets)
        if (detail::putOnce(named, s.name, &s)) sets.push_back(s);
    }
    // Sets no chain names any more are forgotten, with their names.
    for (auto it = sources.begin(); it != sources.end();) {
      if (referenced.count(it->first)) {
        ++it;
        continue;
      }
      setCache.erase(it->first);
      names.erase(it->first);
      it = sources.erase(it);
    }
    for (const auto& name : referenced)
      sets.push_back(cachedSet(model, name));
    stalePeers.clear();
    // The pieces are combined straight into the table: one copy of the service part per build.
    std::vector<const detail::ServicePiece*> pieces;
    for (const auto& [key, piece] : servicePieces)
      pieces.push_back(&piece);
    table = detail::assemble(std::move(sets), std::move(maps), std::move(chainList),
                             detail::combine(std::move(pieces)), flowLog ? &*flowLog : nullptr);
    return table;
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
