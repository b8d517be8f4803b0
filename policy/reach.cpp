#include "nftpol/policy/reach.h"

#include <algorithm>

namespace nftpol::policy {

Result<Endpoint> resolveEndpoint(const Compiled& compiled, const std::string& text) {
  auto slash = text.find('/');
  if (slash == std::string::npos) {
    auto ip = IpAddress::parse(text);
    if (!ip) return Error{"\"" + text + "\" is neither namespace/pod nor an IP address"};
    if (auto pod = compiled.podByAddress(*ip)) return Endpoint{*pod, *ip};
    return Endpoint::ofAddress(*ip);
  }
  std::string ns = text.substr(0, slash), name = text.substr(slash + 1);
  if (auto pod = compiled.findPod(ns, name)) return Endpoint::ofPod(*pod);
  const Pod* pod = compiled.state().findPod(ns, name);
  if (!pod) return Error{"no pod " + text + " in the cluster"};
  if (pod->hostNetwork)
    return Error{"pod " + text + " uses the host network; NetworkPolicy does not apply to it"};
  if (pod->phase == PodPhase::kSucceeded || pod->phase == PodPhase::kFailed)
    return Error{"pod " + text + " has finished; NetworkPolicy ignores it"};
  return Error{"pod " + text + " has no IP address yet; NetworkPolicy ignores it"};
}

std::string_view toString(DecidedBy d) {
  switch (d) {
    case DecidedBy::kAdmin:
      return "admin";
    case DecidedBy::kNetworkPolicy:
      return "networkpolicy";
    case DecidedBy::kBaseline:
      return "baseline";
    case DecidedBy::kDefault:
      break;
  }
  return "default";
}

namespace {

// The first rule of tier t's policies for the pod `self` in direction d that matches the far end and port.
std::optional<TierHit> firstMatch(const Compiled& c, Tier t, Direction d, PodId self, const Endpoint& other,
                                  Family family, const IpAddress& otherAddress, const ReachQuery& q,
                                  const Pod* dst) {
  for (uint32_t policyId : c.tier(self, d, t)) {
    const auto& rules = c.clusterPolicies()[policyId].policy->rules(d);
    for (uint32_t r = 0; r < rules.size(); ++r) {
      const ClusterRule& rule = rules[r];
      // A peer this version cannot read fails closed: a Deny or Pass rule holding one denies everything, an
      // Accept rule matches nothing through it.
      if (rule.deniesAll())
        return TierHit{policyId, r, Action::kDeny, static_cast<int>(*rule.unreadablePeer()), kAllPorts};
      std::optional<int> peer;
      for (uint32_t i = 0; i < rule.peers.size() && !peer; ++i) {
        bool matches = other.pod ? c.clusterPeerMatches(policyId, d, r, i, *other.pod, family)
                                 : c.clusterPeerMatches(policyId, d, r, i, otherAddress);
        if (matches) peer = static_cast<int>(i);
      }
      if (!peer) continue;
      std::optional<int> port;
      if (rule.ports.empty()) port = kAllPorts;
      for (size_t i = 0; i < rule.ports.size() && !port; ++i)
        if (portAdmits(rule.ports[i], q.protocol, q.port, dst)) port = static_cast<int>(i);
      if (port) return TierHit{policyId, r, rule.action, *peer, *port};
    }
  }
  return std::nullopt;
}

// Evaluates one side. `self` is the pod whose policies apply; `other` is the far end; `dst` the destination
// pod (for named ports) or nullptr when the destination is outside the cluster.
SideVerdict evaluateSide(const Compiled& c, Direction d, PodId self, const Endpoint& other, Family family,
                         const IpAddress& otherAddress, const ReachQuery& q, const Pod* dst) {
  SideVerdict side{.applies = true};
  auto isolating = c.isolating(self, d);
  side.isolating.assign(isolating.begin(), isolating.end());
  for (uint32_t policyId : isolating) {
    const auto& cp = c.policies()[policyId];
    for (uint32_t ruleId : d == Direction::kIngress ? cp.ingressRules : cp.egressRules) {
      const CompiledRule& rule = c.rules()[ruleId];
      int peer = -1;
      if (!rule.peers.empty()) {
        auto it = std::find_if(rule.peers.begin(), rule.peers.end(), [&](const CompiledPeer& p) {
          return other.pod ? c.peerMatches(p, *other.pod, family) : c.peerMatches(p, otherAddress);
        });
        if (it == rule.peers.end()) continue;
        peer = static_cast<int>(it - rule.peers.begin());
      }
      auto port = c.portMatch(rule, q.protocol, q.port, dst);
      if (!port) continue;
      side.hits.push_back({ruleId, peer, *port});
    }
  }
  // The tiers in order; a Pass (or no match) hands on to the next.
  side.admin = firstMatch(c, Tier::kAdmin, d, self, other, family, otherAddress, q, dst);
  if (side.admin && side.admin->action != Action::kPass) {
    side.decidedBy = DecidedBy::kAdmin;
    side.allowed = side.admin->action == Action::kAccept;
  } else if (!side.isolating.empty()) {
    side.decidedBy = DecidedBy::kNetworkPolicy;
    side.allowed = !side.hits.empty();
  } else if ((side.baseline = firstMatch(c, Tier::kBaseline, d, self, other, family, otherAddress, q, dst)) &&
             side.baseline->action != Action::kPass) {
    side.decidedBy = DecidedBy::kBaseline;
    side.allowed = side.baseline->action == Action::kAccept;
  } else {
    side.decidedBy = DecidedBy::kDefault;
    side.allowed = true;
  }
  return side;
}

std::vector<Family> familiesOf(const Compiled& c, const Endpoint& e) {
  if (e.address) return {e.address->family()};
  std::vector<Family> out;
  for (const auto& ip : c.pod(*e.pod).ips)
    if (std::find(out.begin(), out.end(), ip.family()) == out.end()) out.push_back(ip.family());
  return out;
}

IpAddress addressOf(const Compiled& c, const Endpoint& e, Family f) {
  return e.address ? *e.address : *c.pod(*e.pod).address(f);
}

}  // namespace

std::vector<Verdict> canReach(const Compiled& c, const ReachQuery& q) {
  if (q.from.pod && q.to.pod && *q.from.pod == *q.to.pod) {
    Verdict v{.allowed = true, .because = Because::kSelf};
    return {v};
  }
  std::vector<Verdict> out;
  auto toFamilies = familiesOf(c, q.to);
  for (Family f : familiesOf(c, q.from)) {
    if (std::find(toFamilies.begin(), toFamilies.end(), f) == toFamilies.end()) continue;
    Verdict v{.family = f, .source = addressOf(c, q.from, f), .destination = addressOf(c, q.to, f)};
    const Pod* dst = q.to.pod ? &c.pod(*q.to.pod) : nullptr;
    if (q.from.pod)
      v.egress = evaluateSide(c, Direction::kEgress, *q.from.pod, q.to, f, *v.destination, q, dst);
    if (q.to.pod) v.ingress = evaluateSide(c, Direction::kIngress, *q.to.pod, q.from, f, *v.source, q, dst);
    v.allowed = v.egress.allowed && v.ingress.allowed;
    out.push_back(std::move(v));
  }
  if (out.empty()) out.push_back(Verdict{.allowed = false, .because = Because::kNoCommonFamily});
  return out;
}

bool anyAllowed(const std::vector<Verdict>& verdicts) {
  return std::any_of(verdicts.begin(), verdicts.end(), [](const Verdict& v) { return v.allowed; });
}

}  // namespace nftpol::policy
