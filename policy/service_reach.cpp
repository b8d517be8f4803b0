#include "nftpol/policy/service_reach.h"

#include <algorithm>

namespace nftpol::policy {

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

Result<ServiceReach> canReachService(const Compiled& c, const Services& services, const Endpoint& from,
                                     const Target& to, Protocol protocol, uint16_t port) {
  const Service& service = *to.service;
  ServiceReach r;
  std::string offered;
  for (const auto* p : services.portsOf(service)) {
    if (p->port().port == port && p->port().protocol == protocol) r.port = p;
    offered += (offered.empty() ? "" : ", ") + std::to_string(p->port().port) + "/" +
               std::string(toString(p->port().protocol)) +
               (p->port().name.empty() ? "" : " " + p->port().name);
  }
  if (!r.port)
    return Error{"service " + service.key() + " has no port " + std::string(toString(protocol)) + "/" +
                 std::to_string(port) + " (it has " + (offered.empty() ? "none" : offered) + ")"};
  // Named by an address that is not a cluster IP: an external or load-balancer address, whose traffic
  // policy may differ.
  bool external = to.virtualAddress && std::find(service.clusterIPs.begin(), service.clusterIPs.end(),
                                                 *to.virtualAddress) == service.clusterIPs.end();
  r.node = from.pod ? c.pod(*from.pod).nodeName : "";
  auto backends = r.port->backendsFor(external, r.node);
  r.noneOnNode = backends.empty() && backends.size() < r.port->backends.size();
  for (const Backend* b : backends) {
    Endpoint e = Endpoint::ofAddress(b->address);
    if (auto pod = c.podByAddress(b->address)) e = Endpoint{*pod, b->address};
    auto verdicts = canReach(c, {.from = from, .to = e, .protocol = protocol, .port = b->port});
    bool allowed = anyAllowed(verdicts);
    r.admitted += allowed;
    r.backends.push_back({b, e, std::move(verdicts), allowed});
  }
  r.outcome = !r.backends.empty() && r.admitted == r.backends.size() ? ServiceReach::Outcome::kAllowed
              : r.admitted                                           ? ServiceReach::Outcome::kPartlyAllowed
                                                                     : ServiceReach::Outcome::kDenied;
  return r;
}

}  // namespace nftpol::policy
