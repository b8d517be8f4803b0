// nftpol can-reach: one connection, its verdict, and the policies and rules that decide it.
#include <algorithm>
#include <ostream>
#include <sstream>

#include "args.h"
#include "cluster_input.h"
#include "commands.h"
#include "nftpol/policy/reach.h"
#include "nftpol/policy/services.h"

namespace nftpol::cli {
namespace {

using namespace nftpol::policy;

std::string endpointName(const Compiled& c, const Endpoint& e) {
  return e.pod ? c.pod(*e.pod).key() : e.address->toString();
}

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

void printSide(const Compiled& c, const char* label, const std::string& who, const SideVerdict& side,
               std::ostream& out) {
  out << "  " << label << " of " << who << ": ";
  if (!side.applies) {
    out << "outside the cluster, no policy applies\n";
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

void jsonSide(const Compiled& c, const SideVerdict& side, std::ostream& out) {
  out << "{\"applies\":" << (side.applies ? "true" : "false")
      << ",\"isolated\":" << (side.isolating.empty() ? "false" : "true")
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
      jsonSide(c, v.egress, out);
      out << ",\"ingress\":";
      jsonSide(c, v.ingress, out);
    }
    out << "}";
  }
  out << "]";
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

// What TO names: a pod or an outside address, or a service (by namespace/name, a virtual address or its DNS
// name). A namespace/name that is both a pod and a service is refused rather than guessed.
struct Target {
  std::optional<Endpoint> endpoint;
  const Service* service = nullptr;
  std::optional<IpAddress> virtualAddress;  // when the service was named by one of its addresses
};

Result<Target> resolveTarget(const Compiled& c, const Services& services, const std::string& text) {
  if (auto slash = text.find('/'); slash != std::string::npos) {
    const Service* service = c.state().findService(text.substr(0, slash), text.substr(slash + 1));
    bool pod = c.state().findPod(text.substr(0, slash), text.substr(slash + 1)) != nullptr;
    if (service && pod)
      return Error{"both a pod and a service are named " + text + "; name the service by its DNS name " +
                   service->name + "." + service->ns + ".svc.cluster.local or by its cluster IP"};
    if (service) return Target{.service = service};
  } else if (auto ip = IpAddress::parse(text)) {
    if (const Service* service = services.byAddress(*ip))
      return Target{.service = service, .virtualAddress = *ip};
  } else if (const Service* service = services.byDnsName(text)) {
    return Target{.service = service};
  } else if (text.find('.') != std::string::npos) {
    return Error{"no service " + text +
                 " in the cluster (a service's DNS name is name.namespace.svc.cluster.local)"};
  }
  auto endpoint = resolveEndpoint(c, text);
  if (!endpoint) return endpoint.error();
  return Target{.endpoint = *endpoint};
}

// can-reach to a service: the connection is translated to one of the port's backends, and policy judges it
// there (DESIGN.md: policy applies after DNAT). Answers for each backend.
int serviceReach(const Compiled& c, const Services& services, const Endpoint& from, const Target& to,
                 const PortArg& asked, const std::string& output, std::ostream& out, std::ostream& err) {
  const Service& service = *to.service;
  const ResolvedServicePort* port = nullptr;
  std::string offered;
  for (const auto* p : services.portsOf(service)) {
    if (p->port().port == asked.port && p->port().protocol == asked.protocol) port = p;
    offered += (offered.empty() ? "" : ", ") + std::to_string(p->port().port) + "/" +
               std::string(toString(p->port().protocol)) +
               (p->port().name.empty() ? "" : " " + p->port().name);
  }
  if (!port) {
    err << "nftpol can-reach: service " << service.key() << " has no port " << asked.toString() << " (it has "
        << (offered.empty() ? "none" : offered) << ")\n";
    return kExitBadInput;
  }
  bool external = to.virtualAddress && std::find(service.clusterIPs.begin(), service.clusterIPs.end(),
                                                 *to.virtualAddress) == service.clusterIPs.end();
  std::string node = from.pod ? c.pod(*from.pod).nodeName : "";
  auto backends = port->backendsFor(external, node);
  std::string fromName = endpointName(c, from), toName = "service " + service.key();

  struct Answer {
    const Backend* backend;
    std::string name;
    std::vector<Verdict> verdicts;
    bool allowed;
  };
  std::vector<Answer> answers;
  size_t admitted = 0;
  for (const Backend* b : backends) {
    Endpoint e = Endpoint::ofAddress(b->address);
    if (auto pod = c.podByAddress(b->address)) e = Endpoint{*pod, b->address};
    auto verdicts = canReach(c, {.from = from, .to = e, .protocol = asked.protocol, .port = b->port});
    bool allowed = anyAllowed(verdicts);
    admitted += allowed;
    answers.push_back({b, endpointName(c, e), std::move(verdicts), allowed});
  }
  bool all = !answers.empty() && admitted == answers.size();

  if (output == "json") {
    out << "{\"allowed\":" << (all ? "true" : "false") << ",\"from\":" << jsonString(fromName)
        << ",\"to\":" << jsonString(toName) << ",\"service\":" << jsonString(service.key())
        << ",\"servicePort\":" << jsonString(port->name())
        << ",\"protocol\":" << jsonString(std::string(toString(asked.protocol))) << ",\"port\":" << asked.port
        << ",\"backendsAllowed\":" << admitted << ",\"backends\":[";
    for (size_t i = 0; i < answers.size(); ++i) {
      const Answer& a = answers[i];
      out << (i ? "," : "") << "{\"backend\":" << jsonString(a.name)
          << ",\"address\":" << jsonString(a.backend->address.toString()) << ",\"port\":" << a.backend->port
          << ",\"node\":" << jsonString(a.backend->nodeName)
          << ",\"allowed\":" << (a.allowed ? "true" : "false") << ",\"verdicts\":";
      jsonVerdicts(c, a.verdicts, out);
      out << "}";
    }
    out << "]}\n";
    return all ? 0 : 1;
  }

  std::string headline = all ? "ALLOWED" : admitted ? "PARTLY ALLOWED" : "DENIED";
  out << headline << ": " << fromName << " -> " << toName << " on " << asked.toString() << " ("
      << port->name() << ")";
  if (answers.empty()) {
    out << ": no ready backend"
        << (backends.size() < port->backends.size() ? " on " + node + " (traffic policy Local)" : "")
        << "; the connection is rejected at once\n";
    return 1;
  }
  out << ": " << admitted << " of " << answers.size() << " backends admit it";
  if (admitted && !all) out << "; each connection goes to a backend chosen at random, so some fail";
  out << "\n";
  for (const Answer& a : answers) {
    out << "  backend " << a.name << " port " << a.backend->port << ": " << (a.allowed ? "allowed" : "denied")
        << "\n";
    printVerdicts(c, a.verdicts, fromName, a.name, "  ", out);
  }
  return all ? 0 : 1;
}

}  // namespace

int canReachCommand(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::parse(argv, {"cluster", "port", "protocol", "output"});
  if (!args) {
    err << "nftpol can-reach: " << args.error().message << "\n";
    return kExitBadInput;
  }
  if (args->positionals().size() != 2) {
    err << "usage: nftpol can-reach --cluster PATH... FROM TO --port PORT [--protocol TCP|UDP|SCTP] "
           "[--output text|json]\n  FROM is namespace/pod or an IP address; TO is one of those or a service "
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
  auto cluster = loadCluster(args->all("cluster"), {}, err);
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
  if (to->service) return serviceReach(c, services, *from, *to, *portArg, output, out, err);
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
