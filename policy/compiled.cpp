#include "nftpol/policy/compiled.h"

#include <algorithm>
#include <map>
#include <tuple>
#include <unordered_map>

namespace nftpol::policy {
std::string CompiledRule::name() const {
  return std::string(toString(direction)) + "[" + std::to_string(index) + "]";
}

Compiled Compiled::build(const ClusterState& state) {
  Compiled c;
  c.state_ = &state;
  c.model_ = Model::view(state);
  const Model& m = c.model_;
  // A view points into state.pods(), so a pod's place there numbers it without hashing.
  const Pod* const first = state.pods().data();
  std::vector<PodId> idAt(state.pods().size());
  for (const auto& [name, pod] : m.pods()) {
    idAt[static_cast<size_t>(pod - first)] = static_cast<PodId>(c.pods_.size());
    c.pods_.push_back(pod);
  }
  for (PodId id = 0; id < c.pods_.size(); ++id)
    for (const auto& ip : c.pods_[id]->ips)
      c.byAddress_.emplace_back(ip, id);
  std::stable_sort(c.byAddress_.begin(), c.byAddress_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  auto numbered = [&](const auto& pods) {
    std::vector<PodId> out;
    out.reserve(pods.size());
    for (const Pod* p : pods)
      out.push_back(idAt[static_cast<size_t>(p - first)]);
    std::sort(out.begin(), out.end());
    return out;
  };

  std::unordered_map<const SharedPeer*, uint32_t> peerIds;
  std::unordered_map<std::string, uint32_t> blockIds;
  auto internPeer = [&](const SharedPeer& shared) -> uint32_t {
    auto [it, inserted] = peerIds.try_emplace(&shared, static_cast<uint32_t>(c.peers_.size()));
    if (inserted) c.peers_.push_back({&shared, shared.description, numbered(shared.members)});
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
  for (const auto& [name, policy] : m.policies()) {
    const NetworkPolicy& p = *policy;
    auto policyId = static_cast<uint32_t>(c.policies_.size());
    CompiledPolicy cp{.policy = &p, .selected = numbered(m.selected(p))};
    for (Direction d : {Direction::kIngress, Direction::kEgress}) {
      if (!p.declares(d)) continue;  // an audited policy's rules too, for explain and lint
      if (p.has(d))
        for (PodId pod : cp.selected)
          ++counts[static_cast<int>(d)][pod];
      const auto& rules = p.rules(d);
      for (uint32_t i = 0; i < rules.size(); ++i) {
        CompiledRule rule{.policy = policyId, .direction = d, .index = i, .rule = &rules[i]};
        for (const auto& peer : rules[i].peers) {
          if (const auto* sel = std::get_if<SelectorPeer>(&peer)) {
            rule.peers.push_back({CompiledPeer::Kind::kSelector, internPeer(m.peer(*sel))});
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

  for (const ClusterNetworkPolicy* policy : m.clusterPolicies()) {
    auto id = static_cast<uint32_t>(c.clusterPolicies_.size());
    CompiledClusterPolicy cp{.policy = policy, .subjects = numbered(m.peer(policy->subject).members)};
    for (Direction d : {Direction::kIngress, Direction::kEgress}) {
      auto& ids = cp.peerIds[static_cast<int>(d)];
      for (const auto& rule : policy->rules(d)) {
        ids.emplace_back();
        for (const auto& peer : rule.peers) {
          if (const auto* sel = std::get_if<SelectorPeer>(&peer))
            ids.back().push_back(internPeer(m.peer(*sel)));
          else
            ids.back().push_back(CompiledClusterPolicy::kNotSelector);
          if (const auto* nodes = std::get_if<NodesPeer>(&peer))
            c.nodeAddresses_.try_emplace(nodes, m.nodeAddresses(nodes->selector));
        }
      }
      if (ids.empty()) continue;
      auto& lists = c.tiers_[static_cast<int>(d)][static_cast<int>(policy->tier)];
      lists.resize(c.pods_.size());
      for (PodId pod : cp.subjects)
        lists[pod].push_back(id);
    }
    c.clusterPolicies_.push_back(std::move(cp));
  }
  for (auto& byTier : c.tiers_)
    for (auto& lists : byTier)
      lists.resize(c.pods_.size());

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

std::optional<uint32_t> Compiled::findClusterPolicy(const std::string& key) const {
  for (uint32_t i = 0; i < clusterPolicies_.size(); ++i)
    if (clusterPolicies_[i].policy->key() == key) return i;
  return std::nullopt;
}

bool Compiled::clusterPeerMatches(uint32_t policy, Direction d, uint32_t rule, uint32_t peer, PodId pod,
                                  Family f) const {
  const CompiledClusterPolicy& cp = clusterPolicies_[policy];
  uint32_t resolved = cp.peerIds[static_cast<int>(d)][rule][peer];
  if (resolved != CompiledClusterPolicy::kNotSelector) {
    const auto& pods = peers_[resolved].pods;
    return std::binary_search(pods.begin(), pods.end(), pod);
  }
  const IpAddress* ip = pods_[pod]->address(f);
  return ip && clusterPeerMatches(policy, d, rule, peer, *ip);
}

bool Compiled::clusterPeerMatches(uint32_t policy, Direction d, uint32_t rule, uint32_t peer,
                                  const IpAddress& address) const {
  const ClusterPeer& p = clusterPolicies_[policy].policy->rules(d)[rule].peers[peer];
  if (const auto* networks = std::get_if<NetworksPeer>(&p))
    return std::any_of(networks->cidrs.begin(), networks->cidrs.end(),
                       [&](const Cidr& cidr) { return cidr.contains(address); });
  if (const auto* nodes = std::get_if<NodesPeer>(&p)) {
    const auto& addresses = nodeAddresses_.at(nodes);
    return std::binary_search(addresses.begin(), addresses.end(), address);
  }
  return false;  // a selector matches pods only; domain names and unknown peers match nothing
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
  for (size_t i = 0; i < ports.size(); ++i)
    if (portAdmits(ports[i], protocol, port, dst)) return static_cast<int>(i);
  return std::nullopt;
}

}  // namespace nftpol::policy
