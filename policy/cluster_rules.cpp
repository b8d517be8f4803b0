// A cluster policy's rules resolved for one pod of its subject: what the renderer turns into a tier's chain.
// The same questions reach.cpp asks of one connection (Compiled::clusterPeerMatches, portAdmits), asked here
// of every connection at once.

#include <algorithm>

#include "nftpol/policy/model.h"

namespace nftpol::policy {

std::string ClusterRuleMatch::name() const {
  return std::string(toString(direction)) + "[" + std::to_string(index) + "]";
}

namespace {

// Does an address of a pod fall under the rule's networks or nodes peers? As Compiled::clusterPeerMatches: a
// pod is in a network by its address of that network's family.
bool addressPeerHolds(const Model& model, const ClusterRuleMatch& m, const Pod& pod, const IpAddress& ip) {
  const IpAddress* own = pod.address(ip.family());
  if (!own || !(*own == ip)) return false;
  for (const Cidr& cidr : m.networks)
    if (cidr.contains(ip)) return true;
  for (const NodesPeer* nodes : m.nodes) {
    auto addresses = model.nodeAddresses(nodes->selector);
    if (std::binary_search(addresses.begin(), addresses.end(), ip)) return true;
  }
  return false;
}

// The egress destinations of a named port: every address of a pod among the rule's peers that serves it.
// Selector peers name their pods; only networks and nodes peers need every pod looked at. A pod in two peers
// is resolved twice, to the same tuples (whoever uses them sorts and deduplicates).
void resolveNamedEgress(const Model& model, ClusterRuleMatch& m, const PortSpec& spec) {
  const auto& name = std::get<std::string>(spec.port);
  auto resolve = [&](const Pod* pod, bool member) {
    auto number = pod->namedPort(name, spec.protocol);
    if (!number) return;
    for (const IpAddress& ip : pod->ips)
      if (member || addressPeerHolds(model, m, *pod, ip))
        m.namedTargets.push_back({ip, spec.protocol, *number});
  };
  if (m.networks.empty() && m.nodes.empty()) {
    for (const SharedPeer* peer : m.pods)
      for (const Pod* pod : peer->members)
        resolve(pod, true);
    return;
  }
  for (const auto& entry : model.pods()) {
    const Pod* pod = entry.second;
    resolve(pod, std::any_of(m.pods.begin(), m.pods.end(),
                             [&](const SharedPeer* peer) { return peer->members.contains(pod); }));
  }
}

}  // namespace

std::vector<ClusterRuleMatch> Model::clusterRules(const Pod& pod, Direction d,
                                                  const ClusterNetworkPolicy& policy) const {
  std::vector<ClusterRuleMatch> out;
  const ClusterNetworkPolicy* p = &policy;
  const auto& rules = p->rules(d);
  for (uint32_t i = 0; i < rules.size(); ++i) {
    const ClusterRule& rule = rules[i];
    ClusterRuleMatch m{.policy = p, .direction = d, .index = i};
    if (rule.deniesAll()) {
      m.deniesAll = true;
      out.push_back(std::move(m));
      continue;
    }
    for (const ClusterPeer& peer : rule.peers) {
      if (const auto* selector = std::get_if<SelectorPeer>(&peer))
        m.pods.push_back(&this->peer(*selector));
      else if (const auto* networks = std::get_if<NetworksPeer>(&peer))
        m.networks.insert(m.networks.end(), networks->cidrs.begin(), networks->cidrs.end());
      else if (const auto* nodes = std::get_if<NodesPeer>(&peer))
        m.nodes.push_back(nodes);
      // domainNames and peers this version cannot read match nothing (for an Accept: fails closed)
    }
    if (m.pods.empty() && m.networks.empty() && m.nodes.empty()) continue;
    m.allPorts = rule.ports.empty();
    for (const PortSpec& spec : rule.ports) {
      if (auto numeric = numericPorts(spec)) {
        m.ports.push_back(*numeric);
      } else if (d == Direction::kIngress) {
        if (auto number = pod.namedPort(std::get<std::string>(spec.port), spec.protocol))
          m.ports.push_back({spec.protocol, *number, *number});
      } else {
        resolveNamedEgress(*this, m, spec);
      }
    }
    if (m.allPorts || !m.ports.empty() || !m.namedTargets.empty()) out.push_back(std::move(m));
  }
  return out;
}

}  // namespace nftpol::policy
