#include "nftpol/policy/compiled.h"

#include <algorithm>
#include <tuple>
#include <unordered_map>

namespace nftpol::policy {
namespace {

// The pods of one namespace and an inverted index over their labels, so that a selector with an equality
// requirement visits only the pods carrying that label instead of the whole namespace.
struct NamespaceIndex {
  std::vector<PodId> pods;
  std::unordered_map<std::string, std::vector<PodId>> byLabel;  // "key\0value" -> sorted pods

  static std::string labelKey(const std::string& k, const std::string& v) { return k + '\0' + v; }
};

class Selection {
 public:
  explicit Selection(const std::vector<const Pod*>& pods) : pods_(pods) {
    for (PodId id = 0; id < pods.size(); ++id) {
      auto& ns = byNamespace_[pods[id]->ns];
      ns.pods.push_back(id);
      for (const auto& [k, v] : pods[id]->labels.items())
        ns.byLabel[NamespaceIndex::labelKey(k, v)].push_back(id);
    }
  }

  // Pods of namespace `ns` matching the selector, sorted.
  std::vector<PodId> select(const std::string& ns, const LabelSelector& selector) const {
    auto it = byNamespace_.find(ns);
    if (it == byNamespace_.end()) return {};
    const NamespaceIndex& index = it->second;
    // Candidates: the smallest posting list among single-valued In requirements.
    const std::vector<PodId>* candidates = &index.pods;
    static const std::vector<PodId> kNone;
    for (const auto& r : selector.requirements()) {
      if (r.op != selectors::Operator::kIn || r.values.size() != 1) continue;
      auto posting = index.byLabel.find(NamespaceIndex::labelKey(r.key, r.values[0]));
      const auto* list = posting == index.byLabel.end() ? &kNone : &posting->second;
      if (list->size() < candidates->size()) candidates = list;
    }
    std::vector<PodId> out;
    for (PodId id : *candidates)
      if (selector.matches(pods_[id]->labels)) out.push_back(id);
    return out;
  }

 private:
  const std::vector<const Pod*>& pods_;
  std::unordered_map<std::string, NamespaceIndex> byNamespace_;
};

}  // namespace

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

std::string CompiledRule::name() const {
  return std::string(toString(direction)) + "[" + std::to_string(index) + "]";
}

Compiled Compiled::build(const ClusterState& state) {
  Compiled c;
  c.state_ = &state;
  for (const auto& p : state.pods())
    if (p.takesPart()) c.pods_.push_back(&p);
  std::sort(c.pods_.begin(), c.pods_.end(),
            [](const Pod* a, const Pod* b) { return std::tie(a->ns, a->name) < std::tie(b->ns, b->name); });
  for (PodId id = 0; id < c.pods_.size(); ++id)
    for (const auto& ip : c.pods_[id]->ips)
      c.byAddress_.emplace_back(ip, id);
  std::stable_sort(c.byAddress_.begin(), c.byAddress_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  Selection selection(c.pods_);
  std::vector<const Namespace*> namespaces;
  for (const auto& ns : state.namespaces())
    namespaces.push_back(&ns);
  std::sort(namespaces.begin(), namespaces.end(),
            [](const Namespace* a, const Namespace* b) { return a->name < b->name; });

  std::vector<const NetworkPolicy*> policies;
  for (const auto& p : state.policies())
    policies.push_back(&p);
  std::sort(policies.begin(), policies.end(), [](const NetworkPolicy* a, const NetworkPolicy* b) {
    return std::tie(a->ns, a->name) < std::tie(b->ns, b->name);
  });

  std::unordered_map<std::string, uint32_t> peerIds, blockIds;
  auto internSelectorPeer = [&](const SelectorPeer& peer, const std::string& policyNs) -> uint32_t {
    LabelSelector everything;
    const LabelSelector& podSel = peer.podSelector ? *peer.podSelector : everything;
    PeerIdentity id = identify(peer, policyNs);
    auto [it, inserted] = peerIds.try_emplace(std::move(id.key), static_cast<uint32_t>(c.peers_.size()));
    if (!inserted) return it->second;
    ResolvedPeer resolved;
    if (peer.namespaceSelector) {
      for (const Namespace* ns : namespaces)
        if (peer.namespaceSelector->matches(ns->labels)) resolved.namespaces.push_back(ns->name);
    } else {
      resolved.namespaces.push_back(policyNs);
    }
    resolved.description = std::move(id.description);
    for (const auto& ns : resolved.namespaces) {
      auto pods = selection.select(ns, podSel);
      resolved.pods.insert(resolved.pods.end(), pods.begin(), pods.end());
    }
    // Namespaces are visited in name order and pod ids follow (namespace, name), so pods stay sorted.
    c.peers_.push_back(std::move(resolved));
    return it->second;
  };
  auto internBlock = [&](const IpBlock& block) -> uint32_t {
    auto [it, inserted] = blockIds.try_emplace(block.toString(), static_cast<uint32_t>(c.blocks_.size()));
    if (inserted) c.blocks_.push_back(block);
    return it->second;
  };

  std::vector<uint32_t> counts[2];
  counts[0].assign(c.pods_.size() + 1, 0);
  counts[1].assign(c.pods_.size() + 1, 0);
  for (const NetworkPolicy* p : policies) {
    auto policyId = static_cast<uint32_t>(c.policies_.size());
    CompiledPolicy cp{.policy = p, .selected = selection.select(p->ns, p->podSelector)};
    for (Direction d : {Direction::kIngress, Direction::kEgress}) {
      if (!p->has(d)) continue;
      for (PodId pod : cp.selected)
        ++counts[static_cast<int>(d)][pod];
      const auto& rules = p->rules(d);
      for (uint32_t i = 0; i < rules.size(); ++i) {
        CompiledRule rule{.policy = policyId, .direction = d, .index = i, .rule = &rules[i]};
        for (const auto& peer : rules[i].peers) {
          if (const auto* sel = std::get_if<SelectorPeer>(&peer)) {
            rule.peers.push_back({CompiledPeer::Kind::kSelector, internSelectorPeer(*sel, p->ns)});
          } else {
            rule.peers.push_back({CompiledPeer::Kind::kIpBlock, internBlock(std::get<IpBlock>(peer))});
          }
        }
        (d == Direction::kIngress ? cp.ingressRules : cp.egressRules)
            .push_back(static_cast<uint32_t>(c.rules_.size()));
        c.rules_.push_back(std::move(rule));
      }
    }
    c.policies_.push_back(std::move(cp));
  }

  // Compressed per-pod lists of isolating policies; policies are visited in sorted order, so each list is
  // too.
  for (int d = 0; d < 2; ++d) {
    auto& offsets = c.offsets_[d];
    offsets.assign(c.pods_.size() + 1, 0);
    for (size_t i = 0; i < c.pods_.size(); ++i)
      offsets[i + 1] = offsets[i] + counts[d][i];
    c.isolatingPolicies_[d].resize(offsets.back());
    std::vector<uint32_t> fill(offsets.begin(), offsets.end() - 1);
    for (uint32_t policyId = 0; policyId < c.policies_.size(); ++policyId) {
      const auto& cp = c.policies_[policyId];
      if (!cp.policy->has(static_cast<Direction>(d))) continue;
      for (PodId pod : cp.selected)
        c.isolatingPolicies_[d][fill[pod]++] = policyId;
    }
  }
  return c;
}

std::optional<PodId> Compiled::findPod(const std::string& ns, const std::string& name) const {
  auto it = std::lower_bound(pods_.begin(), pods_.end(), std::tie(ns, name),
                             [](const Pod* p, const auto& key) { return std::tie(p->ns, p->name) < key; });
  if (it == pods_.end() || (*it)->ns != ns || (*it)->name != name) return std::nullopt;
  return static_cast<PodId>(it - pods_.begin());
}

std::optional<PodId> Compiled::podByAddress(const IpAddress& ip) const {
  auto it = std::lower_bound(byAddress_.begin(), byAddress_.end(), ip,
                             [](const auto& entry, const IpAddress& key) { return entry.first < key; });
  if (it == byAddress_.end() || it->first != ip) return std::nullopt;
  return it->second;
}

std::optional<uint32_t> Compiled::findPolicy(const std::string& ns, const std::string& name) const {
  for (uint32_t i = 0; i < policies_.size(); ++i)
    if (policies_[i].policy->ns == ns && policies_[i].policy->name == name) return i;
  return std::nullopt;
}

std::span<const uint32_t> Compiled::isolating(PodId pod, Direction d) const {
  int i = static_cast<int>(d);
  return {isolatingPolicies_[i].data() + offsets_[i][pod], offsets_[i][pod + 1] - offsets_[i][pod]};
}

bool Compiled::peerMatches(const CompiledPeer& peer, PodId pod, Family f) const {
  if (peer.kind == CompiledPeer::Kind::kSelector) {
    const auto& pods = peers_[peer.id].pods;
    return std::binary_search(pods.begin(), pods.end(), pod);
  }
  const IpAddress* ip = pods_[pod]->address(f);
  return ip && blocks_[peer.id].contains(*ip);
}

bool Compiled::peerMatches(const CompiledPeer& peer, const IpAddress& external) const {
  return peer.kind == CompiledPeer::Kind::kIpBlock && blocks_[peer.id].contains(external);
}

std::optional<int> Compiled::portMatch(const CompiledRule& rule, Protocol protocol, uint16_t port,
                                       const Pod* dst) const {
  const auto& ports = rule.rule->ports;
  if (ports.empty()) return kAllPorts;
  for (size_t i = 0; i < ports.size(); ++i) {
    const PortSpec& spec = ports[i];
    if (spec.protocol != protocol) continue;
    if (std::holds_alternative<PortSpec::AllPorts>(spec.port)) return static_cast<int>(i);
    if (const auto* range = std::get_if<PortSpec::Range>(&spec.port)) {
      if (range->first <= port && port <= range->last) return static_cast<int>(i);
      continue;
    }
    if (dst && dst->namedPort(std::get<std::string>(spec.port), protocol) == port) return static_cast<int>(i);
  }
  return std::nullopt;
}

std::vector<Allowance> Compiled::allowances(PodId pod, Direction d) const {
  std::vector<Allowance> out;
  for (uint32_t policyId : isolating(pod, d)) {
    const CompiledPolicy& cp = policies_[policyId];
    for (uint32_t ruleId : d == Direction::kIngress ? cp.ingressRules : cp.egressRules) {
      const CompiledRule& rule = rules_[ruleId];
      Allowance a{.rule = ruleId,
                  .allPeers = rule.peers.empty(),
                  .peers = rule.peers,
                  .allPorts = rule.rule->ports.empty()};
      for (const PortSpec& spec : rule.rule->ports) {
        if (std::holds_alternative<PortSpec::AllPorts>(spec.port)) {
          a.ports.push_back({spec.protocol, 0, 65535});
        } else if (const auto* range = std::get_if<PortSpec::Range>(&spec.port)) {
          a.ports.push_back({spec.protocol, range->first, range->last});
        } else if (d == Direction::kIngress) {
          if (auto number = pods_[pod]->namedPort(std::get<std::string>(spec.port), spec.protocol))
            a.ports.push_back({spec.protocol, *number, *number});
        } else {
          for (PodId dst = 0; dst < pods_.size(); ++dst) {
            auto number = pods_[dst]->namedPort(std::get<std::string>(spec.port), spec.protocol);
            if (!number) continue;
            bool inPeers = a.allPeers;
            for (const auto& peer : a.peers)
              for (const auto& ip : pods_[dst]->ips)
                inPeers = inPeers || peerMatches(peer, dst, ip.family());
            if (inPeers) a.namedTargets.push_back({dst, spec.protocol, *number});
          }
        }
      }
      // A rule whose only ports were names that resolve nowhere admits nothing; keep it out of the set.
      if (a.allPorts || !a.ports.empty() || !a.namedTargets.empty()) out.push_back(std::move(a));
    }
  }
  return out;
}

}  // namespace nftpol::policy
