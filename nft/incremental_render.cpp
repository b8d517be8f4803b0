#include "nftpol/nft/incremental_render.h"

#include <algorithm>
#include <optional>
#include <unordered_set>

#include "chain_builder.h"
#include "nftpol/policy/services.h"

namespace nftpol::nft {

using policy::Direction;
using policy::IpBlock;
using policy::Namespace;
using policy::NetworkPolicy;
using policy::Pod;
using policy::PortSpec;
using policy::SelectorPeer;

namespace {

// Policy keys using a peer or an ipBlock, with how many rules each; the first key names the set.
using Users = std::map<std::string, int>;

void addUser(Users& users, const std::string& key) {
  ++users[key];
}
bool dropUser(Users& users, const std::string& key) {  // true when nobody uses it any more
  auto it = users.find(key);
  if (it != users.end() && --it->second == 0) users.erase(it);
  return users.empty();
}

bool hasNamedPort(const Pod& p) {
  return std::any_of(p.ports.begin(), p.ports.end(), [](const auto& cp) { return !cp.name.empty(); });
}

}  // namespace

struct IncrementalRenderer::State {
  struct Peer {
    SelectorPeer selector;
    std::string policyNamespace;  // the scope when there is no namespaceSelector
    std::string description;
    Users users;
    std::unordered_set<const Pod*> members;  // entries of `pods`, whose addresses stay put
  };
  struct Block {
    IpBlock block;
    Users users;
  };
  struct Local {
    std::string chain[2];      // by Direction; empty when the pod is not isolated that way
    bool namedEgress = false;  // an egress rule of its policies names a port: depends on other pods' ports
  };
  struct ChainEntry {
    Chain chain;
    std::vector<Set> namedSets;
    std::vector<std::string> sets;  // peer and cidr sets its rules name
    int refs = 0;
  };

  std::string node;
  std::unordered_map<std::string, Pod> pods;  // taking part only
  std::unordered_map<std::string, std::vector<const Pod*>> podsByNamespace;
  std::unordered_map<std::string, policy::Labels> namespaceLabels;  // given namespaces
  mutable std::unordered_map<std::string, policy::Labels> impliedLabels;
  std::map<std::string, NetworkPolicy> policies;
  std::unordered_map<std::string, std::set<std::string>> policiesByNamespace;  // names, sorted
  std::unordered_map<std::string, Peer> peers;                                 // by identity key
  std::unordered_map<std::string, std::string> peerBySet;                      // set name -> peer key
  std::map<std::string, Block> blocks;                                         // by IpBlock text
  std::unordered_map<std::string, std::string> blockBySet;
  std::map<std::string, Local> local;  // local pod key -> its chains
  std::map<std::string, ChainEntry> chains;
  std::unordered_map<std::string, Set> setCache;  // built peer and cidr sets
  std::set<std::string> dirtyLocal;               // local pods (or pods that were local) to recompute
  std::set<std::string> dirtySets;                // cached sets to rebuild
  bool changed = true;
  Table table;
  policy::ClusterState serviceObjects;  // services and endpoint slices
  // Each service's piece of the NAT part, rendered alone: a change costs its own service, plus the combine.
  std::map<std::string, detail::ServicePiece> servicePieces;
  std::set<std::string> dirtyServices;
  std::unordered_map<std::string, std::set<std::string>> podReaders;  // pod -> services its ports resolved

  // --- services

  static std::pair<std::string, std::string> split(const std::string& key) {
    auto slash = key.find('/');
    return {key.substr(0, slash), slash == std::string::npos ? "" : key.substr(slash + 1)};
  }
  void setService(const std::string& key, const policy::Service* service) {
    if (service)
      serviceObjects.upsert(*service);
    else
      serviceObjects.remove("Service", key);
    dirtyServices.insert(key);
  }
  void setEndpointSlice(const std::string& key, const policy::EndpointSlice* slice) {
    auto [ns, name] = split(key);
    if (const auto* old = serviceObjects.findEndpointSlice(ns, name))
      dirtyServices.insert(old->ns + "/" + old->serviceName);
    if (slice) {
      dirtyServices.insert(slice->ns + "/" + slice->serviceName);
      serviceObjects.upsert(*slice);
    } else {
      serviceObjects.remove("EndpointSlice", key);
    }
  }
  void renderServices() {
    for (const auto& key : dirtyServices) {
      servicePieces.erase(key);
      auto [ns, name] = split(key);
      const policy::Service* service = serviceObjects.findService(ns, name);
      if (!service) continue;
      auto resolved = policy::Services::buildOne(
          serviceObjects, *service, [&, key = key](const std::string& podNs, const std::string& podName) {
            std::string pod = podNs + "/" + podName;
            podReaders[pod].insert(key);
            auto it = pods.find(pod);
            return it == pods.end() ? nullptr : &it->second;
          });
      std::vector<const policy::ResolvedServicePort*> ports;
      for (const auto& p : resolved.ports())
        ports.push_back(&p);
      if (!ports.empty()) servicePieces.emplace(key, detail::renderService(ports, node));
    }
    dirtyServices.clear();
    changed = true;
  }

  const policy::Labels& labelsOf(const std::string& ns) const {
    if (auto it = namespaceLabels.find(ns); it != namespaceLabels.end()) return it->second;
    auto [it, inserted] = impliedLabels.try_emplace(ns);
    if (inserted) it->second = policy::namespaceLabels(ns, {});
    return it->second;
  }

  bool matches(const Peer& peer, const Pod& pod) const {
    if (peer.selector.namespaceSelector) {
      if (!peer.selector.namespaceSelector->matches(labelsOf(pod.ns))) return false;
    } else if (pod.ns != peer.policyNamespace) {
      return false;
    }
    return !peer.selector.podSelector || peer.selector.podSelector->matches(pod.labels);
  }

  void peerChanged(const std::string& key) {
    const Peer& peer = peers.at(key);
    for (Family f : {Family::kV4, Family::kV6})
      dirtySets.insert(detail::peerSetName(peer.description, f));
    changed = true;
  }

  void dirtyNamedEgress() {
    for (const auto& [key, l] : local)
      if (l.namedEgress) dirtyLocal.insert(key);
  }

  // --- pods

  void setPod(const std::string& key, const Pod* given) {
    if (auto readers = podReaders.find(key); readers != podReaders.end()) {
      dirtyServices.insert(readers->second.begin(), readers->second.end());
      podReaders.erase(readers);
    }
    if (given && !given->takesPart()) given = nullptr;
    auto it = pods.find(key);
    if (it == pods.end() && !given) return;
    // The entry keeps its address when it is assigned, so peers' member pointers stay valid.
    std::optional<Pod> old;
    const Pod* entry = nullptr;
    if (it != pods.end()) {
      old = it->second;
      entry = &it->second;
    }
    if (given) entry = &pods.insert_or_assign(key, *given).first->second;
    const Pod* before = old ? &*old : nullptr;
    const Pod* now = given ? entry : nullptr;
    bool namedPorts = (before && hasNamedPort(*before)) || (now && hasNamedPort(*now));
    bool memberships = false;
    for (auto& [peerKey, peer] : peers) {
      bool was = before && matches(peer, *before);
      bool is = now && matches(peer, *now);
      if (!was && !is) continue;
      if (was != is) {
        memberships = true;
        if (is) {
          peer.members.insert(entry);
        } else {
          peer.members.erase(entry);
        }
      }
      if (was != is || before->ips != now->ips) peerChanged(peerKey);
    }
    // Named egress ports resolve on destination pods: their ports and addresses, in any rule's peers.
    if (namedPorts &&
        (memberships || !before || !now || before->ports != now->ports || before->ips != now->ips))
      dirtyNamedEgress();
    if ((before && before->nodeName == node) || (now && now->nodeName == node)) dirtyLocal.insert(key);
    if (!now) {
      auto& inNamespace = podsByNamespace[before->ns];
      inNamespace.erase(std::find(inNamespace.begin(), inNamespace.end(), entry));
      pods.erase(key);
    } else if (!before) {
      podsByNamespace[now->ns].push_back(entry);
    }
    changed = true;
  }

  // --- namespaces

  void setNamespace(const std::string& name, const Namespace* now) {
    policy::Labels before = labelsOf(name);
    if (now) {
      namespaceLabels.insert_or_assign(name, now->labels);
    } else {
      namespaceLabels.erase(name);
    }
    const policy::Labels& after = labelsOf(name);
    if (before.items() == after.items()) return;
    auto members = podsByNamespace.find(name);
    if (members == podsByNamespace.end()) return;
    for (auto& [peerKey, peer] : peers) {
      if (!peer.selector.namespaceSelector) continue;
      if (peer.selector.namespaceSelector->matches(before) == peer.selector.namespaceSelector->matches(after))
        continue;
      bool any = false;
      for (const Pod* pod : members->second) {
        bool is = matches(peer, *pod);
        any = (is ? peer.members.insert(pod).second : peer.members.erase(pod) > 0) || any;
      }
      if (any) {
        peerChanged(peerKey);
        dirtyNamedEgress();
      }
    }
  }

  // --- policies

  // Every peer of the policy's rules, in the directions it has.
  template <typename F>
  static void forEachPeer(const NetworkPolicy& p, F&& f) {
    for (Direction d : {Direction::kIngress, Direction::kEgress}) {
      if (!p.has(d)) continue;
      for (const auto& rule : p.rules(d))
        for (const auto& peer : rule.peers)
          f(peer);
    }
  }

  void acquire(const NetworkPolicy& p) {
    const std::string key = p.key();
    forEachPeer(p, [&](const policy::Peer& peer) {
      if (const auto* sel = std::get_if<SelectorPeer>(&peer)) {
        policy::PeerIdentity id = policy::identify(*sel, p.ns);
        auto [it, inserted] = peers.try_emplace(id.key);
        Peer& entry = it->second;
        if (inserted) {
          entry.selector = *sel;
          entry.policyNamespace = p.ns;
          entry.description = id.description;
          resolve(entry);
          for (Family f : {Family::kV4, Family::kV6})
            detail::claimName(peerBySet, detail::peerSetName(entry.description, f), id.key);
        }
        bool first = entry.users.empty() || key < entry.users.begin()->first;
        addUser(entry.users, key);
        if (inserted || first) peerChanged(id.key);
      } else {
        const IpBlock& block = std::get<IpBlock>(peer);
        auto [it, inserted] = blocks.try_emplace(block.toString(), Block{block, {}});
        bool first = it->second.users.empty() || key < it->second.users.begin()->first;
        addUser(it->second.users, key);
        std::string set = detail::cidrSetName(block, block.cidr.family());
        if (inserted) detail::claimName(blockBySet, set, it->first);
        if (first) dirtySets.insert(set);
      }
    });
  }

  void release(const NetworkPolicy& p) {
    const std::string key = p.key();
    forEachPeer(p, [&](const policy::Peer& peer) {
      if (const auto* sel = std::get_if<SelectorPeer>(&peer)) {
        std::string id = policy::identify(*sel, p.ns).key;
        Peer& entry = peers.at(id);
        if (dropUser(entry.users, key)) {
          for (Family f : {Family::kV4, Family::kV6}) {
            std::string set = detail::peerSetName(entry.description, f);
            peerBySet.erase(set);
            setCache.erase(set);
            dirtySets.erase(set);
          }
          peers.erase(id);
        } else {
          peerChanged(id);  // the first user may have changed
        }
      } else {
        const IpBlock& block = std::get<IpBlock>(peer);
        auto it = blocks.find(block.toString());
        std::string set = detail::cidrSetName(block, block.cidr.family());
        if (dropUser(it->second.users, key)) {
          blocks.erase(it);
          blockBySet.erase(set);
          setCache.erase(set);
          dirtySets.erase(set);
        } else {
          dirtySets.insert(set);
        }
      }
    });
  }

  void resolve(Peer& peer) {
    auto visit = [&](const std::vector<const Pod*>& inNamespace) {
      for (const Pod* pod : inNamespace)
        if (matches(peer, *pod)) peer.members.insert(pod);
    };
    if (!peer.selector.namespaceSelector) {
      if (auto it = podsByNamespace.find(peer.policyNamespace); it != podsByNamespace.end())
        visit(it->second);
      return;
    }
    for (const auto& [ns, inNamespace] : podsByNamespace)
      if (peer.selector.namespaceSelector->matches(labelsOf(ns))) visit(inNamespace);
  }

  void dirtySelected(const NetworkPolicy& p) {
    for (const auto& [key, l] : local) {
      auto pod = pods.find(key);  // a local pod removed since the last build is already dirty
      if (pod != pods.end() && pod->second.ns == p.ns && p.podSelector.matches(pod->second.labels))
        dirtyLocal.insert(key);
    }
  }

  void setPolicy(const std::string& key, const NetworkPolicy* now) {
    auto it = policies.find(key);
    if (it != policies.end()) {
      dirtySelected(it->second);
      release(it->second);
      policiesByNamespace[it->second.ns].erase(it->second.name);
      policies.erase(it);
    }
    if (now) {
      acquire(*now);
      policiesByNamespace[now->ns].insert(now->name);
      policies.insert_or_assign(key, *now);
      dirtySelected(*now);
    }
    changed = true;
  }

  // --- chains

  std::string peerSetFor(const policy::Peer& peer, const std::string& policyNs, Family f) {
    if (const auto* sel = std::get_if<SelectorPeer>(&peer))
      return detail::peerSetName(peers.at(policy::identify(*sel, policyNs).key).description, f);
    return detail::cidrSetName(std::get<IpBlock>(peer), f);
  }

  // The destinations of a named egress port: pods in the rule's peers (all pods when it names none).
  void namedTargets(const policy::Rule& rule, const std::string& policyNs, const PortSpec& spec,
                    std::vector<std::tuple<IpAddress, uint8_t, uint16_t>>& out) {
    const auto& name = std::get<std::string>(spec.port);
    auto add = [&](const Pod& dst) {
      if (auto number = dst.namedPort(name, spec.protocol))
        for (const auto& ip : dst.ips)
          out.emplace_back(ip, ipProtocolNumber(spec.protocol), *number);
    };
    if (rule.peers.empty()) {
      for (const auto& [key, pod] : pods)
        add(pod);
      return;
    }
    for (const auto& peer : rule.peers) {
      if (const auto* sel = std::get_if<SelectorPeer>(&peer)) {
        for (const Pod* pod : peers.at(policy::identify(*sel, policyNs).key).members)
          add(*pod);
        continue;
      }
      const IpBlock& block = std::get<IpBlock>(peer);
      for (const auto& [key, pod] : pods) {
        bool inside = false;
        for (const auto& ip : pod.ips) {
          const IpAddress* first = pod.address(ip.family());
          inside = inside || (first && block.contains(*first));
        }
        if (inside) add(pod);
      }
    }
  }

  // The chain of a local pod in one direction, or "" when no policy isolates it that way.
  std::string chainFor(const Pod& pod, Direction d, bool& namedEgress) {
    std::vector<std::string> isolatedBy;
    std::vector<detail::RuleAllowance> allowances;
    auto names = policiesByNamespace.find(pod.ns);
    if (names == policiesByNamespace.end()) return "";
    for (const auto& name : names->second) {
      const NetworkPolicy& p = policies.at(pod.ns + "/" + name);
      if (!p.has(d) || !p.podSelector.matches(pod.labels)) continue;
      isolatedBy.push_back(p.key());
      const auto& rules = p.rules(d);
      for (size_t i = 0; i < rules.size(); ++i) {
        const policy::Rule& rule = rules[i];
        detail::RuleAllowance a{.policyKey = p.key(),
                                .ruleName = std::string(toString(d)) + "[" + std::to_string(i) + "]",
                                .allPeers = rule.peers.empty(),
                                .allPorts = rule.ports.empty()};
        for (const PortSpec& spec : rule.ports) {
          if (std::holds_alternative<PortSpec::AllPorts>(spec.port)) {
            a.ports.push_back({spec.protocol, 0, 65535});
          } else if (const auto* range = std::get_if<PortSpec::Range>(&spec.port)) {
            a.ports.push_back({spec.protocol, range->first, range->last});
          } else if (d == Direction::kIngress) {
            if (auto number = pod.namedPort(std::get<std::string>(spec.port), spec.protocol))
              a.ports.push_back({spec.protocol, *number, *number});
          } else {
            namedEgress = true;
            namedTargets(rule, p.ns, spec, a.named);
          }
        }
        if (!a.allPorts && a.ports.empty() && a.named.empty()) continue;  // names that resolve nowhere
        if (a.allPorts || !a.ports.empty()) {
          for (const auto& peer : rule.peers)
            for (Family f : {Family::kV4, Family::kV6}) {
              const auto* block = std::get_if<IpBlock>(&peer);
              if (block && block->cidr.family() != f) continue;
              a.peerSets.emplace_back(f, peerSetFor(peer, p.ns, f));
            }
        }
        allowances.push_back(std::move(a));
      }
    }
    if (isolatedBy.empty()) return "";
    detail::BuiltChain built = detail::buildChain(d, allowances, isolatedBy);
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

  void dropChain(const std::string& name) {
    if (name.empty()) return;
    auto it = chains.find(name);
    if (--it->second.refs == 0) chains.erase(it);
  }

  void recompute(const std::string& key) {
    auto podIt = pods.find(key);
    bool isLocal = podIt != pods.end() && podIt->second.nodeName == node;
    auto it = local.find(key);
    if (it != local.end()) {
      for (auto& c : it->second.chain)
        dropChain(c);
      if (!isLocal) local.erase(it);
    }
    if (!isLocal) return;
    Local& l = local[key];
    l.namedEgress = false;
    for (Direction d : {Direction::kIngress, Direction::kEgress}) {
      bool named = false;
      l.chain[static_cast<int>(d)] = chainFor(podIt->second, d, named);
      l.namedEgress = l.namedEgress || named;
    }
  }

  const Set& cachedSet(const std::string& name) {
    auto it = setCache.find(name);
    if (it != setCache.end() && !dirtySets.count(name)) return it->second;
    Family f = name.ends_with("-v4") ? Family::kV4 : Family::kV6;
    Set s;
    if (auto peer = peerBySet.find(name); peer != peerBySet.end()) {
      const Peer& entry = peers.at(peer->second);
      std::vector<IpAddress> addresses;
      for (const Pod* pod : entry.members)
        if (const IpAddress* ip = pod->address(f)) addresses.push_back(*ip);
      std::sort(addresses.begin(), addresses.end());
      addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
      s = detail::peerSet(entry.description, f, entry.users.begin()->first, addresses);
    } else {
      const Block& block = blocks.at(blockBySet.at(name));
      s = detail::cidrSet(block.block, f, block.users.begin()->first);
    }
    dirtySets.erase(name);
    return setCache.insert_or_assign(name, std::move(s)).first->second;
  }

  const Table& build() {
    if (!dirtyServices.empty()) renderServices();
    if (!changed && dirtyLocal.empty() && dirtySets.empty()) return table;
    for (const auto& key : dirtyLocal)
      recompute(key);
    dirtyLocal.clear();
    std::vector<std::tuple<std::string, IpAddress, std::string>> dispatch;
    for (const auto& [key, l] : local)
      for (Direction d : {Direction::kIngress, Direction::kEgress})
        if (!l.chain[static_cast<int>(d)].empty())
          for (const auto& ip : pods.at(key).ips)
            dispatch.emplace_back(detail::mapName(d, ip.family()), ip, l.chain[static_cast<int>(d)]);
    std::vector<Set> sets = detail::dispatchMaps(std::move(dispatch));
    std::map<std::string, const Set*> named;
    std::set<std::string> referenced;
    std::vector<Chain> chainList;
    for (const auto& [name, e] : chains) {
      chainList.push_back(e.chain);
      referenced.insert(e.sets.begin(), e.sets.end());
      for (const auto& s : e.namedSets)
        if (detail::putOnce(named, s.name, &s)) sets.push_back(s);
    }
    for (const auto& name : referenced)
      sets.push_back(cachedSet(name));
    // The pieces are combined straight into the table: one copy of the service part per build.
    std::vector<const detail::ServicePiece*> pieces;
    for (const auto& [key, piece] : servicePieces)
      pieces.push_back(&piece);
    table = detail::assemble(std::move(sets), std::move(chainList), detail::combine(std::move(pieces)));
    changed = false;
    return table;
  }
};

IncrementalRenderer::IncrementalRenderer(std::string node) : s_(std::make_unique<State>()) {
  s_->node = std::move(node);
  s_->table = detail::assemble(detail::dispatchMaps({}), {});
}
IncrementalRenderer::~IncrementalRenderer() = default;
IncrementalRenderer::IncrementalRenderer(IncrementalRenderer&&) noexcept = default;
IncrementalRenderer& IncrementalRenderer::operator=(IncrementalRenderer&&) noexcept = default;

void IncrementalRenderer::setNamespace(const std::string& name, const policy::Namespace* ns) {
  s_->setNamespace(name, ns);
}
void IncrementalRenderer::setPod(const std::string& key, const policy::Pod* pod) {
  s_->setPod(key, pod);
}
void IncrementalRenderer::setPolicy(const std::string& key, const policy::NetworkPolicy* policy) {
  s_->setPolicy(key, policy);
}
void IncrementalRenderer::setService(const std::string& key, const policy::Service* service) {
  s_->setService(key, service);
}
void IncrementalRenderer::setEndpointSlice(const std::string& key, const policy::EndpointSlice* slice) {
  s_->setEndpointSlice(key, slice);
}
const Table& IncrementalRenderer::table() {
  return s_->build();
}
const std::string& IncrementalRenderer::node() const {
  return s_->node;
}
size_t IncrementalRenderer::localPods() const {
  return s_->local.size();
}
size_t IncrementalRenderer::policies() const {
  return s_->policies.size();
}

}  // namespace nftpol::nft
