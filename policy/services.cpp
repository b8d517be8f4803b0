#include "nftpol/policy/services.h"

#include <algorithm>
#include <unordered_map>

namespace nftpol::policy {

namespace {

bool isVirtualAddressOf(const Service& s, const IpAddress& address) {
  for (const auto* list : {&s.clusterIPs, &s.externalIPs, &s.loadBalancerIPs})
    if (std::find(list->begin(), list->end(), address) != list->end()) return true;
  return false;
}

// The port an endpoint serves `port` on. The EndpointSlice says it (its port entry of the same name and
// protocol, as the endpoints controller wrote it); a hand-written slice without that entry falls back to the
// number, or to the named container port of the endpoint's pod.
template <typename PodOf>
uint16_t backendPort(const ServicePort& port, const EndpointPort* entry, const PodOf& podOf) {
  if (entry) return entry->port;
  if (const auto* number = std::get_if<uint16_t>(&port.targetPort)) return *number;
  if (const Pod* pod = podOf())
    if (auto named = pod->namedPort(std::get<std::string>(port.targetPort), port.protocol)) return *named;
  return 0;
}

}  // namespace

std::string ResolvedServicePort::name() const {
  const ServicePort& p = port();
  return service->key() + ":" +
         (p.name.empty() ? std::to_string(p.port) + "/" + std::string(toString(p.protocol)) : p.name);
}

std::vector<const Backend*> ResolvedServicePort::backendsFor(bool external, const std::string& node) const {
  TrafficPolicy policy = external ? service->externalTrafficPolicy : service->internalTrafficPolicy;
  std::vector<const Backend*> out;
  for (const auto& b : backends)
    if (policy == TrafficPolicy::kCluster || b.nodeName == node) out.push_back(&b);
  return out;
}

Services Services::build(const ClusterState& state) {
  return build(state,
               [&](const std::string& ns, const std::string& name) { return state.findPod(ns, name); });
}

Services Services::build(const ClusterState& state, const PodLookup& findPod) {
  Services out;
  out.state_ = &state;
  std::unordered_map<std::string, std::vector<const EndpointSlice*>> slicesOf;  // by service key
  for (const auto& slice : state.endpointSlices())
    if (!slice.serviceName.empty()) slicesOf[slice.ns + "/" + slice.serviceName].push_back(&slice);
  static const std::vector<const EndpointSlice*> kNone;
  for (const auto& service : state.services()) {
    auto slices = slicesOf.find(service.key());
    out.resolve(service, slices == slicesOf.end() ? kNone : slices->second, findPod);
  }
  return out;
}

Services Services::buildOne(const ClusterState& state, const Service& service, const PodLookup& findPod) {
  Services out;
  out.state_ = &state;
  std::vector<const EndpointSlice*> slices;
  for (const auto& slice : state.endpointSlices())
    if (slice.ns == service.ns && slice.serviceName == service.name) slices.push_back(&slice);
  out.resolve(service, slices, findPod);
  return out;
}

void Services::resolve(const Service& service, const std::vector<const EndpointSlice*>& slices,
                       const PodLookup& findPod) {
  if (service.type == ServiceType::kExternalName) return;  // a DNS alias: nothing to translate
  for (size_t i = 0; i < service.ports.size(); ++i) {
    ResolvedServicePort resolved{&service, i, {}};
    const ServicePort& port = service.ports[i];
    for (const EndpointSlice* slice : slices) {
      auto entry = std::find_if(slice->ports.begin(), slice->ports.end(), [&](const EndpointPort& e) {
        return e.name == port.name && e.protocol == port.protocol && e.port != 0;
      });
      for (const auto& endpoint : slice->endpoints) {
        if (!endpoint.ready) continue;
        uint16_t target = backendPort(port, entry == slice->ports.end() ? nullptr : &*entry, [&] {
          return endpoint.podName.empty() ? nullptr : findPod(endpoint.podNs, endpoint.podName);
        });
        if (target == 0) continue;
        std::string podKey = endpoint.podName.empty() ? "" : endpoint.podNs + "/" + endpoint.podName;
        for (const auto& address : endpoint.addresses)
          resolved.backends.push_back({address, target, endpoint.nodeName, podKey});
      }
    }
    auto& b = resolved.backends;
    std::sort(b.begin(), b.end(), [](const Backend& x, const Backend& y) {
      return std::tie(x.address, x.port) < std::tie(y.address, y.port);
    });
    b.erase(std::unique(b.begin(), b.end(),
                        [](const Backend& x, const Backend& y) {
                          return x.address == y.address && x.port == y.port;
                        }),
            b.end());
    ports_.push_back(std::move(resolved));
  }
}

std::vector<const ResolvedServicePort*> Services::portsOf(const Service& service) const {
  std::vector<const ResolvedServicePort*> out;
  for (const auto& p : ports_)
    if (p.service == &service) out.push_back(&p);
  return out;
}

const ResolvedServicePort* Services::byVirtualAddress(const IpAddress& address, Protocol protocol,
                                                      uint16_t port) const {
  for (const auto& p : ports_)
    if (p.port().protocol == protocol && p.port().port == port && isVirtualAddressOf(*p.service, address))
      return &p;
  return nullptr;
}

const ResolvedServicePort* Services::byNodePort(Protocol protocol, uint16_t nodePort) const {
  for (const auto& p : ports_)
    if (p.port().nodePort == nodePort && p.port().protocol == protocol) return &p;
  return nullptr;
}

const Service* Services::byDnsName(std::string_view name) const {
  for (std::string_view suffix : {".svc.cluster.local", ".svc.cluster.local.", ".svc"})
    if (name.size() > suffix.size() && name.ends_with(suffix)) {
      name.remove_suffix(suffix.size());
      break;
    }
  auto dot = name.find('.');
  if (dot == std::string_view::npos || name.find('.', dot + 1) != std::string_view::npos) return nullptr;
  return state_->findService(std::string(name.substr(dot + 1)), std::string(name.substr(0, dot)));
}

const Service* Services::byAddress(const IpAddress& address) const {
  for (const auto& s : state_->services())
    if (isVirtualAddressOf(s, address)) return &s;
  return nullptr;
}

}  // namespace nftpol::policy
