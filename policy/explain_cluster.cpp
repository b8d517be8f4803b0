// explain and lint for cluster policies: subjects and peers resolved, in evaluation order, and the rules that
// can never decide anything.
#include <algorithm>

#include "nftpol/policy/explain.h"

namespace nftpol::policy {
namespace {

std::string ruleName(Direction d, size_t index, const ClusterRule& rule) {
  std::string out = "spec." + std::string(toString(d)) + "[" + std::to_string(index) + "]";
  if (!rule.name.empty()) out += " \"" + rule.name + "\"";
  return out;
}

const char* peersField(Direction d) {
  return d == Direction::kIngress ? "from" : "to";
}

// The pods a cluster rule's peers hold, in every family (nodes, domain names and unknown peers hold none).
std::vector<PodId> peerPods(const Compiled& c, uint32_t policy, Direction d, uint32_t rule) {
  std::vector<PodId> out;
  size_t peers = c.clusterPolicies()[policy].policy->rules(d)[rule].peers.size();
  for (PodId p = 0; p < c.pods().size(); ++p)
    for (uint32_t k = 0; k < peers; ++k) {
      bool match = std::any_of(c.pod(p).ips.begin(), c.pod(p).ips.end(), [&](const IpAddress& ip) {
        return c.clusterPeerMatches(policy, d, rule, k, p, ip.family());
      });
      if (match) {
        out.push_back(p);
        break;
      }
    }
  return out;
}

std::string peerText(const Compiled& c, uint32_t policy, Direction d, uint32_t rule, uint32_t k) {
  const ClusterPeer& peer = c.clusterPolicies()[policy].policy->rules(d)[rule].peers[k];
  uint32_t resolved = c.clusterPolicies()[policy].peerIds[static_cast<int>(d)][rule][k];
  if (resolved != CompiledClusterPolicy::kNotSelector) {
    const ResolvedPeer& r = c.resolvedPeer(resolved);
    std::string out = r.description + " -> namespaces [";
    auto namespaces = c.namespacesOf(resolved);
    for (size_t i = 0; i < namespaces.size(); ++i)
      out += (i ? ", " : "") + namespaces[i];
    return out + "], " + podList(c, r.pods);
  }
  if (const auto* networks = std::get_if<NetworksPeer>(&peer)) {
    std::string out = "networks ";
    for (size_t i = 0; i < networks->cidrs.size(); ++i)
      out += (i ? ", " : "") + networks->cidrs[i].toString();
    std::vector<PodId> inside;
    for (PodId p = 0; p < c.pods().size(); ++p)
      if (std::any_of(c.pod(p).ips.begin(), c.pod(p).ips.end(),
                      [&](const IpAddress& ip) { return c.clusterPeerMatches(policy, d, rule, k, ip); }))
        inside.push_back(p);
    return out + " (cluster pods inside: " + podList(c, inside) + ")";
  }
  if (const auto* nodes = std::get_if<NodesPeer>(&peer)) {
    std::string out = "nodes {" + nodes->selector.toString() + "} -> addresses [";
    auto addresses = c.model().nodeAddresses(nodes->selector);
    for (size_t i = 0; i < addresses.size(); ++i)
      out += (i ? ", " : "") + addresses[i].toString();
    return out + "]";
  }
  if (const auto* domains = std::get_if<DomainNamesPeer>(&peer)) {
    std::string out = "domainNames ";
    for (size_t i = 0; i < domains->names.size(); ++i)
      out += (i ? ", " : "") + domains->names[i];
    return out + " (not enforced: matches nothing)";
  }
  std::string out = "a peer this version cannot read (";
  const auto& fields = std::get<UnknownPeer>(peer).fields;
  for (size_t i = 0; i < fields.size(); ++i)
    out += (i ? ", " : "") + fields[i];
  return out + "): fails closed";
}

std::string ordinal(size_t n) {
  std::string suffix = (n % 100 >= 11 && n % 100 <= 13) ? "th"
                       : n % 10 == 1                    ? "st"
                       : n % 10 == 2                    ? "nd"
                       : n % 10 == 3                    ? "rd"
                                                        : "th";
  return std::to_string(n) + suffix;
}

// Port entry `inner` is inside `outer`: same protocol, and the same name or a range within.
bool portCovers(const PortSpec& outer, const PortSpec& inner) {
  if (outer.protocol != inner.protocol) return false;
  if (std::holds_alternative<PortSpec::AllPorts>(outer.port)) return true;
  if (const auto* name = std::get_if<std::string>(&outer.port)) {
    const auto* other = std::get_if<std::string>(&inner.port);
    return other && *other == *name;
  }
  const auto* o = std::get_if<PortSpec::Range>(&outer.port);
  const auto* i = std::get_if<PortSpec::Range>(&inner.port);
  return o && i && o->first <= i->first && i->last <= o->last;
}

bool portsCover(const std::vector<PortSpec>& outer, const std::vector<PortSpec>& inner) {
  if (outer.empty()) return true;
  if (inner.empty()) return false;
  return std::all_of(inner.begin(), inner.end(), [&](const PortSpec& in) {
    return std::any_of(outer.begin(), outer.end(), [&](const PortSpec& out) { return portCovers(out, in); });
  });
}

bool portsOverlap(const std::vector<PortSpec>& a, const std::vector<PortSpec>& b) {
  if (a.empty() || b.empty()) return true;
  for (const auto& x : a)
    for (const auto& y : b) {
      if (x.protocol != y.protocol) continue;
      const auto* rx = std::get_if<PortSpec::Range>(&x.port);
      const auto* ry = std::get_if<PortSpec::Range>(&y.port);
      if (!rx || !ry || (rx->first <= ry->last && ry->first <= rx->last)) return true;
    }
  return false;
}

bool subset(const std::vector<PodId>& inner, const std::vector<PodId>& outer) {
  return std::includes(outer.begin(), outer.end(), inner.begin(), inner.end());
}

bool intersects(const std::vector<PodId>& a, const std::vector<PodId>& b) {
  for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
    if (a[i] == b[j]) return true;
    a[i] < b[j] ? ++i : ++j;
  }
  return false;
}

// What a rule matches, as the cluster stands: its peer pods, and its address peers by content.
struct Reach {
  std::vector<PodId> pods;
  std::vector<Cidr> networks;
  std::vector<std::string> nodes;  // selectors
  bool other = false;              // domain names or unknown peers: never shadowed, never shadowing
};

Reach reachOf(const Compiled& c, uint32_t policy, Direction d, uint32_t rule) {
  Reach r{.pods = peerPods(c, policy, d, rule)};
  for (const auto& peer : c.clusterPolicies()[policy].policy->rules(d)[rule].peers) {
    if (const auto* n = std::get_if<NetworksPeer>(&peer))
      r.networks.insert(r.networks.end(), n->cidrs.begin(), n->cidrs.end());
    else if (const auto* nodes = std::get_if<NodesPeer>(&peer))
      r.nodes.push_back(nodes->selector.toString());
    else if (!std::holds_alternative<SelectorPeer>(peer))
      r.other = true;
  }
  return r;
}

bool reachCovers(const Reach& outer, const Reach& inner) {
  if (outer.other || inner.other || !subset(inner.pods, outer.pods)) return false;
  auto covered = [&](const Cidr& n) {
    return std::any_of(outer.networks.begin(), outer.networks.end(),
                       [&](const Cidr& o) { return o.covers(n); });
  };
  if (!std::all_of(inner.networks.begin(), inner.networks.end(), covered)) return false;
  return std::all_of(inner.nodes.begin(), inner.nodes.end(), [&](const std::string& s) {
    return std::find(outer.nodes.begin(), outer.nodes.end(), s) != outer.nodes.end();
  });
}

bool reachOverlaps(const Reach& a, const Reach& b) {
  if (intersects(a.pods, b.pods)) return true;
  for (const auto& x : a.networks)
    for (const auto& y : b.networks)
      if (x.covers(y) || y.covers(x)) return true;
  for (const auto& s : a.nodes)
    if (std::find(b.nodes.begin(), b.nodes.end(), s) != b.nodes.end()) return true;
  return false;
}

}  // namespace

std::string explainClusterPolicy(const Compiled& c, uint32_t id) {
  const CompiledClusterPolicy& cp = c.clusterPolicies()[id];
  const ClusterNetworkPolicy& p = *cp.policy;
  size_t position = 0, inTier = 0;
  for (uint32_t i = 0; i < c.clusterPolicies().size(); ++i) {
    if (c.clusterPolicies()[i].policy->tier != p.tier) continue;
    ++inTier;
    if (i <= id) ++position;
  }
  std::string out = std::string(kindName(p.kind)) + " " + p.key() + " (" + p.where.toString() + ")\n";
  out += "  tier " + std::string(toString(p.tier)) + ", priority " +
         (p.kind == ClusterPolicyKind::kBaselineAdminNetworkPolicy
              ? std::string("none (after every Baseline CNP)")
              : std::to_string(p.priority)) +
         ": evaluated " + ordinal(position) + " of " + std::to_string(inTier) + " in its tier\n";
  const std::string& description = c.model().peer(p.subject).description;
  out += "  subject " + description + " selects " + std::to_string(cp.subjects.size()) +
         " pod(s): " + podList(c, cp.subjects) + "\n";
  for (Direction d : {Direction::kIngress, Direction::kEgress}) {
    const auto& rules = p.rules(d);
    if (rules.empty()) {
      out += "  " + std::string(toString(d)) + ": no rules, so it does not affect " +
             std::string(toString(d)) + "\n";
      continue;
    }
    for (uint32_t r = 0; r < rules.size(); ++r) {
      const ClusterRule& rule = rules[r];
      out += "  " + ruleName(d, r, rule) + ": " + std::string(toString(rule.action)) + "\n";
      for (uint32_t k = 0; k < rule.peers.size(); ++k)
        out += "    " + std::string(peersField(d)) + "[" + std::to_string(k) + "] " +
               peerText(c, id, d, r, k) + "\n";
      if (rule.ports.empty()) out += "    ports: all\n";
      for (size_t i = 0; i < rule.ports.size(); ++i)
        out += "    ports[" + std::to_string(i) + "] " + rule.ports[i].toString() + "\n";
    }
  }
  return out;
}

std::vector<Diagnostic> lintClusterPolicies(const Compiled& c) {
  std::vector<Diagnostic> out;
  const auto& all = c.clusterPolicies();
  // What each rule matches, once: the checks below compare rules pairwise, and each reach scans every pod.
  std::vector<std::vector<Reach>> reaches[2];
  for (Direction d : {Direction::kIngress, Direction::kEgress})
    for (uint32_t id = 0; id < all.size(); ++id) {
      reaches[static_cast<int>(d)].emplace_back();
      for (uint32_t r = 0; r < all[id].policy->rules(d).size(); ++r)
        reaches[static_cast<int>(d)].back().push_back(reachOf(c, id, d, r));
    }
  auto reach = [&](uint32_t id, Direction d, uint32_t r) -> const Reach& {
    return reaches[static_cast<int>(d)][id][r];
  };
  for (uint32_t id = 0; id < all.size(); ++id) {
    const ClusterNetworkPolicy& p = *all[id].policy;
    std::string object = std::string(kindName(p.kind)) + " " + p.name;
    auto warn = [&](const SourceLocation& where, std::string field, std::string message) {
      out.push_back({Severity::kWarning, where, object, std::move(field), std::move(message)});
    };
    if (all[id].subjects.empty())
      warn(p.where, "spec.subject", "selects no pod (" + c.model().peer(p.subject).description + ")");
    for (Direction d : {Direction::kIngress, Direction::kEgress}) {
      const auto& rules = p.rules(d);
      for (uint32_t r = 0; r < rules.size(); ++r) {
        std::string path = "spec." + std::string(toString(d)) + "[" + std::to_string(r) + "]";
        const Reach& mine = reach(id, d, r);
        if (!mine.other && mine.pods.empty() && mine.networks.empty() && mine.nodes.empty()) {
          warn(rules[r].where, path, "matches no peer");
          continue;
        }
        // Shadowed: an earlier rule, of this policy or of one before it in the tier order (Admin before
        // Baseline), matches at least everything this one does for at least its subjects.
        bool shadowed = false;
        for (uint32_t e = 0; e <= id && !shadowed; ++e) {
          const ClusterNetworkPolicy& earlier = *all[e].policy;
          if (e != id && !subset(all[id].subjects, all[e].subjects)) continue;
          const auto& erules = earlier.rules(d);
          uint32_t end = e == id ? r : static_cast<uint32_t>(erules.size());
          for (uint32_t k = 0; k < end && !shadowed; ++k) {
            // A Pass ends only its own tier: it shadows nothing below it.
            if (earlier.tier != p.tier && erules[k].action == Action::kPass) continue;
            if (!portsCover(erules[k].ports, rules[r].ports) || !reachCovers(reach(e, d, k), mine)) continue;
            shadowed = true;
            warn(rules[r].where, path,
                 "shadowed by " + (e == id ? std::string() : earlier.key() + " ") +
                     ruleName(d, k, erules[k]) + " (" + std::string(toString(erules[k].action)) +
                     "), which matches every connection this rule does: it never decides anything");
          }
        }
      }
    }
    // Equal priorities in one tier with overlapping rules of different actions: the API leaves the order to
    // the implementation; say which one nftpol applies.
    for (uint32_t other = id + 1; other < all.size(); ++other) {
      const ClusterNetworkPolicy& q = *all[other].policy;
      if (q.tier != p.tier || q.priority != p.priority || !intersects(all[id].subjects, all[other].subjects))
        continue;
      bool conflict = false;
      for (Direction d : {Direction::kIngress, Direction::kEgress})
        for (uint32_t a = 0; a < p.rules(d).size() && !conflict; ++a)
          for (uint32_t b = 0; b < q.rules(d).size() && !conflict; ++b)
            conflict = p.rules(d)[a].action != q.rules(d)[b].action &&
                       portsOverlap(p.rules(d)[a].ports, q.rules(d)[b].ports) &&
                       reachOverlaps(reach(id, d, a), reach(other, d, b));
      if (conflict)
        warn(p.where, "spec.priority",
             "same priority (" + std::to_string(p.priority) + ") as " + q.key() + " in the " +
                 std::string(toString(p.tier)) +
                 " tier, with overlapping rules of different actions: the API leaves their order to the "
                 "implementation; nftpol evaluates " +
                 p.key() + " first (by name)");
    }
  }
  return out;
}

}  // namespace nftpol::policy
