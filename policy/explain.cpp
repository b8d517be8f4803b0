#include "nftpol/policy/explain.h"

#include <algorithm>
#include <set>

namespace nftpol::policy {
std::string podList(const Compiled& c, const std::vector<PodId>& pods) {
  if (pods.empty()) return "no pods";
  std::string out;
  for (size_t i = 0; i < pods.size(); ++i)
    out += (i ? ", " : "") + c.pod(pods[i]).key();
  return out;
}

namespace {

std::string types(const NetworkPolicy& p) {
  if (p.ingress && p.egress) return "Ingress, Egress";
  return p.ingress ? "Ingress" : "Egress";
}

// The pods that a rule's peers match (every pod when the rule names no peer).
std::vector<PodId> peerPods(const Compiled& c, const CompiledRule& rule) {
  std::vector<PodId> out;
  for (PodId p = 0; p < c.pods().size(); ++p) {
    bool match = rule.peers.empty();
    for (const auto& peer : rule.peers) {
      for (const auto& ip : c.pod(p).ips)
        match = match || c.peerMatches(peer, p, ip.family());
      if (match) break;
    }
    if (match) out.push_back(p);
  }
  return out;
}

// Where a named port lands: on the selected pods for ingress, on the peer pods for egress.
std::vector<std::pair<PodId, uint16_t>> resolveNamed(const Compiled& c, const CompiledRule& rule,
                                                     const std::string& name, Protocol protocol) {
  const auto& targets =
      rule.direction == Direction::kIngress ? c.policies()[rule.policy].selected : peerPods(c, rule);
  std::vector<std::pair<PodId, uint16_t>> out;
  for (PodId p : targets)
    if (auto port = c.pod(p).namedPort(name, protocol)) out.emplace_back(p, *port);
  return out;
}

const char* peersField(Direction d) {
  return d == Direction::kIngress ? "from" : "to";
}

}  // namespace

std::string explainPolicy(const Compiled& c, uint32_t policyId) {
  const CompiledPolicy& cp = c.policies()[policyId];
  const NetworkPolicy& p = *cp.policy;
  std::string out = "NetworkPolicy " + p.key() + " (" + p.where.toString() + ")\n";
  out += "  podSelector {" + p.podSelector.toString() + "} selects " + std::to_string(cp.selected.size()) +
         " pod(s): " + podList(c, cp.selected) + "\n";
  out += "  policyTypes: " + types(p) + "\n";
  if (p.audit)
    out += "  mode: audit (" + std::string(kModeAnnotation) +
           "): not enforced; the connections it would deny are reported as would-deny\n";
  for (Direction d : {Direction::kIngress, Direction::kEgress}) {
    if (!p.declares(d)) continue;
    const auto& ruleIds = d == Direction::kIngress ? cp.ingressRules : cp.egressRules;
    if (ruleIds.empty()) {
      out += "  " + std::string(toString(d)) + ": no rules, so the selected pods deny all " +
             std::string(toString(d)) + "\n";
      continue;
    }
    for (uint32_t ruleId : ruleIds) {
      const CompiledRule& rule = c.rules()[ruleId];
      out += "  " + rule.name() + ":\n";
      if (rule.peers.empty())
        out += "    " + std::string(peersField(d)) + ": every peer (all pods and addresses)\n";
      for (size_t i = 0; i < rule.peers.size(); ++i) {
        const CompiledPeer& peer = rule.peers[i];
        out += "    " + std::string(peersField(d)) + "[" + std::to_string(i) + "] ";
        if (peer.kind == CompiledPeer::Kind::kSelector) {
          const ResolvedPeer& r = c.resolvedPeer(peer.id);
          out += r.description + " -> namespaces [";
          auto namespaces = c.namespacesOf(peer.id);
          for (size_t k = 0; k < namespaces.size(); ++k)
            out += (k ? ", " : "") + namespaces[k];
          out += "], " + podList(c, r.pods) + "\n";
        } else {
          std::vector<PodId> inside;
          for (PodId pod = 0; pod < c.pods().size(); ++pod)
            for (const auto& ip : c.pod(pod).ips)
              if (c.peerMatches(peer, pod, ip.family())) {
                inside.push_back(pod);
                break;
              }
          out += "ipBlock " + c.ipBlock(peer.id).toString() + " (cluster pods inside: " + podList(c, inside) +
                 ")\n";
        }
      }
      const auto& ports = rule.rule->ports;
      if (ports.empty()) out += "    ports: all\n";
      for (size_t i = 0; i < ports.size(); ++i) {
        out += "    ports[" + std::to_string(i) + "] " + ports[i].toString();
        if (const auto* name = std::get_if<std::string>(&ports[i].port)) {
          auto resolved = resolveNamed(c, rule, *name, ports[i].protocol);
          out += resolved.empty() ? " (resolves on no pod)" : " (";
          for (size_t k = 0; k < resolved.size(); ++k)
            out +=
                (k ? ", " : "") + c.pod(resolved[k].first).key() + "=" + std::to_string(resolved[k].second);
          if (!resolved.empty()) out += ")";
        }
        out += "\n";
      }
    }
  }
  return out;
}

std::vector<Diagnostic> lint(const Compiled& c) {
  std::vector<Diagnostic> out;
  for (const CompiledPolicy& cp : c.policies()) {
    const NetworkPolicy& p = *cp.policy;
    std::string object = "NetworkPolicy " + p.key();
    auto warn = [&](const SourceLocation& where, std::string field, std::string message) {
      out.push_back({Severity::kWarning, where, object, std::move(field), std::move(message)});
    };
    if (cp.selected.empty())
      warn(p.where, "spec.podSelector",
           "selects no pod {" + p.podSelector.toString() + "} in namespace " + p.ns);
    if (p.audit)
      warn(
          p.where, "metadata.annotations[" + std::string(kModeAnnotation) + "]",
          "audit mode: not enforced; what it would deny is reported as would-deny (can-reach and matrix show "
          "it enforced with --audit-as-enforced)");
    for (Direction d : {Direction::kIngress, Direction::kEgress}) {
      if (!p.declares(d)) continue;
      const auto& ruleIds = d == Direction::kIngress ? cp.ingressRules : cp.egressRules;
      std::string base = "spec." + std::string(toString(d));
      std::optional<uint32_t> allowAll;
      for (uint32_t ruleId : ruleIds) {
        const CompiledRule& rule = c.rules()[ruleId];
        if (rule.peers.empty() && rule.rule->ports.empty() && !allowAll) allowAll = rule.index;
      }
      for (uint32_t ruleId : ruleIds) {
        const CompiledRule& rule = c.rules()[ruleId];
        std::string path = base + "[" + std::to_string(rule.index) + "]";
        if (allowAll && *allowAll != rule.index)
          warn(rule.rule->where, path,
               "shadowed by " + base + "[" + std::to_string(*allowAll) + "], which allows all " +
                   std::string(toString(d)) + " traffic");
        for (size_t i = 0; i < rule.peers.size(); ++i) {
          const CompiledPeer& peer = rule.peers[i];
          if (peer.kind != CompiledPeer::Kind::kSelector) continue;
          const ResolvedPeer& r = c.resolvedPeer(peer.id);
          if (r.pods.empty())
            warn(rule.rule->where, path + "." + peersField(d) + "[" + std::to_string(i) + "]",
                 "matches no pod (" + r.description + ")");
        }
        const auto& ports = rule.rule->ports;
        for (size_t i = 0; i < ports.size(); ++i) {
          const auto* name = std::get_if<std::string>(&ports[i].port);
          if (name && resolveNamed(c, rule, *name, ports[i].protocol).empty())
            warn(rule.rule->where, path + ".ports[" + std::to_string(i) + "]",
                 "named port " + ports[i].toString() + " resolves on no " +
                     (d == Direction::kIngress ? "selected pod" : "peer pod"));
        }
      }
    }
  }
  auto cluster = lintClusterPolicies(c);
  out.insert(out.end(), cluster.begin(), cluster.end());
  return out;
}

}  // namespace nftpol::policy
