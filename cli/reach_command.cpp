// nftpol can-reach: one connection, its verdict, and the policies and rules that decide it.
#include <algorithm>
#include <ostream>
#include <sstream>

#include "args.h"
#include "cluster_input.h"
#include "commands.h"
#include "nftpol/policy/reach.h"
#include "nftpol/policy/service_reach.h"
#include "reach_text.h"

namespace nftpol::cli {
namespace {

using namespace nftpol::policy;

std::string familyName(Family f) {
  return f == Family::kV4 ? "IPv4" : "IPv6";
}

std::string ruleText(const Compiled& c, const RuleHit& hit) {
  const CompiledRule& rule = c.rules()[hit.rule];
  const NetworkPolicy& p = *c.policies()[rule.policy].policy;
  const char* peers = rule.direction == Direction::kIngress ? "from" : "to";
  std::string out = p.key() + " " + rule.name();
  out += hit.peer < 0 ? std::string(" (every peer")
                      : std::string(" (") + peers + "[" + std::to_string(hit.peer) + "]";
  out += hit.port == kAllPorts
             ? ", every port)"
             : ", ports[" + std::to_string(hit.port) + "] " + rule.rule->ports[hit.port].toString() + ")";
  return out + " at " + rule.rule->where.toString();
}

// "cnp/name ingress[0] "rule-name" (from[1], ports[0] TCP/80) at file:line:column"
std::string tierRuleText(const Compiled& c, Direction d, const TierHit& hit) {
  const ClusterNetworkPolicy& p = *c.clusterPolicies()[hit.policy].policy;
  const ClusterRule& rule = p.rules(d)[hit.rule];
  std::string out = p.key() + " " + std::string(toString(d)) + "[" + std::to_string(hit.rule) + "]";
  if (!rule.name.empty()) out += " \"" + rule.name + "\"";
  out +=
      std::string(" (") + (d == Direction::kIngress ? "from" : "to") + "[" + std::to_string(hit.peer) + "]";
  out += hit.port == kAllPorts
             ? ", every port)"
             : ", ports[" + std::to_string(hit.port) + "] " + rule.ports[hit.port].toString() + ")";
  return out + " at " + rule.where.toString();
}

// A tier's match: "Admin tier: <rule>: Deny".
void printTierHit(const Compiled& c, Tier t, Direction d, const TierHit& hit, std::ostream& out) {
  out << toString(t) << " tier: " << tierRuleText(c, d, hit) << ": " << toString(hit.action);
  const ClusterRule& rule = c.clusterPolicies()[hit.policy].policy->rules(d)[hit.rule];
  if (hit.action != rule.action)
    out << " (a " << toString(rule.action) << " rule with a peer this version cannot read)";
}

void printSide(const Compiled& c, const char* label, const std::string& who, const SideVerdict& side,
               std::ostream& out) {
  out << "  " << label << " of " << who << ": ";
  if (!side.applies) {
    out << "outside the cluster, no policy applies\n";
    return;
  }
  Direction d = std::string_view(label) == "ingress" ? Direction::kIngress : Direction::kEgress;
  if (side.admin) {
    printTierHit(c, Tier::kAdmin, d, *side.admin, out);
    if (side.decidedBy == DecidedBy::kAdmin) {
      out << ", " << (side.allowed ? "allowed" : "denied") << "\n";
      return;
    }
    out << "; then ";
  }
  if (side.decidedBy == DecidedBy::kBaseline || (side.decidedBy == DecidedBy::kDefault && side.baseline)) {
    out << "not isolated by NetworkPolicy; ";
    printTierHit(c, Tier::kBaseline, d, *side.baseline, out);
    out << ", " << (side.allowed ? "allowed" : "denied") << "\n";
    return;
  }
  if (side.isolating.empty()) {
    out << "not isolated (no policy selects it for " << label << "), allowed\n";
    return;
  }
  out << "isolated by ";
  for (size_t i = 0; i < side.isolating.size(); ++i)
    out << (i ? ", " : "") << c.policies()[side.isolating[i]].policy->key();
  if (side.hits.empty()) {
    out << "; no rule allows it, denied\n";
    return;
  }
  out << "; allowed by\n";
  for (const auto& hit : side.hits)
    out << "    " << ruleText(c, hit) << "\n";
}

void jsonTierHit(const Compiled& c, Direction d, const TierHit& hit, std::ostream& out) {
  const ClusterNetworkPolicy& p = *c.clusterPolicies()[hit.policy].policy;
  const ClusterRule& rule = p.rules(d)[hit.rule];
  out << "{\"policy\":" << jsonString(p.key())
      << ",\"rule\":" << jsonString(std::string(toString(d)) + "[" + std::to_string(hit.rule) + "]")
      << ",\"name\":" << jsonString(rule.name)
      << ",\"action\":" << jsonString(std::string(toString(hit.action))) << ",\"peer\":" << hit.peer
      << ",\"port\":" << hit.port << ",\"location\":" << jsonString(rule.where.toString()) << "}";
}

void jsonSide(const Compiled& c, Direction d, const SideVerdict& side, std::ostream& out) {
  out << "{\"applies\":" << (side.applies ? "true" : "false");
  if (side.applies) out << ",\"decidedBy\":" << jsonString(std::string(toString(side.decidedBy)));
  if (side.admin) {
    out << ",\"admin\":";
    jsonTierHit(c, d, *side.admin, out);
  }
  if (side.baseline) {
    out << ",\"baseline\":";
    jsonTierHit(c, d, *side.baseline, out);
  }
  out << ",\"isolated\":" << (side.isolating.empty() ? "false" : "true")
      << ",\"allowed\":" << (side.allowed ? "true" : "false") << ",\"policies\":[";
  for (size_t i = 0; i < side.isolating.size(); ++i)
    out << (i ? "," : "") << jsonString(c.policies()[side.isolating[i]].policy->key());
  out << "],\"allowedBy\":[";
  for (size_t i = 0; i < side.hits.size(); ++i) {
    const auto& hit = side.hits[i];
    const CompiledRule& rule = c.rules()[hit.rule];
    out << (i ? "," : "") << "{\"policy\":" << jsonString(c.policies()[rule.policy].policy->key())
        << ",\"rule\":" << jsonString(rule.name()) << ",\"peer\":" << hit.peer << ",\"port\":" << hit.port
        << ",\"location\":" << jsonString(rule.rule->where.toString()) << "}";
  }
  out << "]}";
}

const char* becauseText(Because b) {
  switch (b) {
    case Because::kSelf:
      return "self";
    case Because::kNoCommonFamily:
      return "no-common-address-family";
    case Because::kPolicies:
      break;
  }
  return "policies";
}

void jsonVerdicts(const Compiled& c, const std::vector<Verdict>& verdicts, std::ostream& out) {
  out << "[";
  for (size_t i = 0; i < verdicts.size(); ++i) {
    const Verdict& v = verdicts[i];
    out << (i ? "," : "") << "{\"allowed\":" << (v.allowed ? "true" : "false")
        << ",\"reason\":" << jsonString(becauseText(v.because));
    if (v.family) {
      out << ",\"family\":" << jsonString(familyName(*v.family))
          << ",\"source\":" << jsonString(v.source->toString())
          << ",\"destination\":" << jsonString(v.destination->toString()) << ",\"egress\":";
      jsonSide(c, Direction::kEgress, v.egress, out);
      out << ",\"ingress\":";
      jsonSide(c, Direction::kIngress, v.ingress, out);
    }
    out << "}";
  }
  out << "]";
}

// Prints a connection to a service: its verdict at each backend.
int printServiceReach(const Compiled& c, const Endpoint& from, const Service& service, const ServiceReach& r,
                      const PortArg& asked, const std::string& output, std::ostream& out) {
  using Outcome = ServiceReach::Outcome;
  bool all = r.outcome == Outcome::kAllowed;
  std::string fromName = endpointName(c, from), toName = "service " + service.key();
  if (output == "json") {
    out << "{\"allowed\":" << (all ? "true" : "false") << ",\"from\":" << jsonString(fromName)
        << ",\"to\":" << jsonString(toName) << ",\"service\":" << jsonString(service.key())
        << ",\"servicePort\":" << jsonString(r.port->name())
        << ",\"protocol\":" << jsonString(std::string(toString(asked.protocol))) << ",\"port\":" << asked.port
        << ",\"backendsAllowed\":" << r.admitted << ",\"backends\":[";
    for (size_t i = 0; i < r.backends.size(); ++i) {
      const BackendVerdict& b = r.backends[i];
      out << (i ? "," : "") << "{\"backend\":" << jsonString(endpointName(c, b.endpoint))
          << ",\"address\":" << jsonString(b.backend->address.toString()) << ",\"port\":" << b.backend->port
          << ",\"node\":" << jsonString(b.backend->nodeName)
          << ",\"allowed\":" << (b.allowed ? "true" : "false") << ",\"verdicts\":";
      jsonVerdicts(c, b.verdicts, out);
      out << "}";
    }
    out << "]}\n";
    return all ? 0 : 1;
  }

  const char* headline = all ? "ALLOWED" : r.outcome == Outcome::kPartlyAllowed ? "PARTLY ALLOWED" : "DENIED";
  out << headline << ": " << fromName << " -> " << toName << " on " << asked.toString() << " ("
      << r.port->name() << ")";
  if (r.backends.empty()) {
    out << ": no ready backend" << (r.noneOnNode ? " on " + r.node + " (traffic policy Local)" : "")
        << "; the connection is rejected at once\n";
    return 1;
  }
  out << ": " << r.admitted << " of " << r.backends.size() << " backends admit it";
  if (r.outcome == Outcome::kPartlyAllowed)
    out << "; each connection goes to a backend chosen at random, so some fail";
  out << "\n";
  for (const BackendVerdict& b : r.backends) {
    std::string name = endpointName(c, b.endpoint);
    out << "  backend " << name << " port " << b.backend->port << ": " << (b.allowed ? "allowed" : "denied")
        << "\n";
    printVerdicts(c, b.verdicts, fromName, name, "  ", out);
  }
  return all ? 0 : 1;
}

}  // namespace

std::string endpointName(const policy::Compiled& c, const policy::Endpoint& e) {
  return e.pod ? c.pod(*e.pod).key() : e.address->toString();
}

void printVerdicts(const Compiled& c, const std::vector<Verdict>& verdicts, const std::string& fromName,
                   const std::string& toName, const std::string& indent, std::ostream& out) {
  for (const Verdict& v : verdicts) {
    if (v.because == Because::kSelf) {
      out << indent << "  traffic a pod sends to itself is always allowed\n";
      continue;
    }
    if (v.because == Because::kNoCommonFamily) {
      out << indent << "  the two ends share no address family (IPv4/IPv6)\n";
      continue;
    }
    if (verdicts.size() > 1)
      out << indent << " " << familyName(*v.family) << " " << v.source->toString() << " -> "
          << v.destination->toString() << ": " << (v.allowed ? "allowed" : "denied") << "\n";
    std::ostringstream sides;
    printSide(c, "egress", fromName, v.egress, sides);
    printSide(c, "ingress", toName, v.ingress, sides);
    std::istringstream lines(sides.str());
    for (std::string line; std::getline(lines, line);)
      out << indent << line << "\n";
  }
}

int canReachCommand(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::parse(argv, {"cluster", "port", "protocol", "output"}, {"audit-as-enforced"});
  if (!args) {
    err << "nftpol can-reach: " << args.error().message << "\n";
    return kExitBadInput;
  }
  if (args->positionals().size() != 2) {
    err << "usage: nftpol can-reach --cluster PATH... FROM TO --port PORT [--protocol TCP|UDP|SCTP] "
           "[--output text|json] [--audit-as-enforced]\n  FROM is namespace/pod or an IP address; TO is one "
           "of those or a service "
           "(namespace/service, its cluster IP, or service.namespace.svc.cluster.local)\n";
    return kExitBadInput;
  }
  auto portArg = parsePortArg(*args);
  if (!portArg) {
    err << "nftpol can-reach: " << portArg.error().message << "\n";
    return kExitBadInput;
  }
  std::string output = args->last("output").value_or("text");
  if (output != "text" && output != "json") {
    err << "nftpol can-reach: invalid --output \"" << output << "\" (must be text or json)\n";
    return kExitBadInput;
  }
  auto cluster = loadCluster(args->all("cluster"), {}, err, args->flag("audit-as-enforced"));
  if (!cluster) return kExitBadInput;
  const Compiled& c = *cluster->compiled;
  Services services = Services::build(*cluster->state);
  auto from = resolveEndpoint(c, args->positionals()[0]);
  auto to = resolveTarget(c, services, args->positionals()[1]);
  for (const auto* e : {from ? nullptr : &from.error(), to ? nullptr : &to.error()}) {
    if (e) {
      err << "nftpol can-reach: " << e->message << "\n";
      return kExitBadInput;
    }
  }
  if (to->service) {
    auto reach = canReachService(c, services, *from, *to, portArg->protocol, portArg->port);
    if (!reach) {
      err << "nftpol can-reach: " << reach.error().message << "\n";
      return kExitBadInput;
    }
    return printServiceReach(c, *from, *to->service, *reach, *portArg, output, out);
  }
  if (!from->pod && !to->endpoint->pod) {
    err << "nftpol can-reach: FROM and TO are both outside the cluster; no NetworkPolicy applies\n";
    return kExitBadInput;
  }
  ReachQuery q{.from = *from, .to = *to->endpoint, .protocol = portArg->protocol, .port = portArg->port};
  auto verdicts = canReach(c, q);
  bool allowed = anyAllowed(verdicts);
  std::string fromName = endpointName(c, *from), toName = endpointName(c, *to->endpoint);

  if (output == "json") {
    out << "{\"allowed\":" << (allowed ? "true" : "false") << ",\"from\":" << jsonString(fromName)
        << ",\"to\":" << jsonString(toName)
        << ",\"protocol\":" << jsonString(std::string(toString(q.protocol))) << ",\"port\":" << q.port
        << ",\"verdicts\":";
    jsonVerdicts(c, verdicts, out);
    out << "}\n";
    return allowed ? 0 : 1;
  }
  out << (allowed ? "ALLOWED" : "DENIED") << ": " << fromName << " -> " << toName << " on "
      << portArg->toString() << "\n";
  printVerdicts(c, verdicts, fromName, toName, "", out);
  return allowed ? 0 : 1;
}

}  // namespace nftpol::cli
