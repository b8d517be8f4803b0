// Service, EndpointSlice and Node: the objects service NAT and routes between nodes are built from, validated
// as the API server validates them (the fields nftpol uses; the rest of a Service's spec is left alone, so a
// manifest of a newer Kubernetes still loads).
#include <algorithm>
#include <set>

#include "load_fields.h"

namespace nftpol::policy::load {

namespace {

// A list of addresses: each entry a string that parses as an IP address.
std::vector<IpAddress> addressList(Context& cx, const yaml::Node& node, const std::string& path) {
  std::vector<IpAddress> out;
  if (!expectSequence(cx, node, path)) return out;
  for (size_t i = 0; i < node.size(); ++i) {
    auto s = stringField(cx, node[i], indexed(path, i));
    if (!s) continue;
    auto ip = IpAddress::parse(*s);
    if (!ip) {
      cx.error(node[i], indexed(path, i), ip.error().message);
    } else {
      out.push_back(*ip);
    }
  }
  return out;
}

// `field` of `map` must be one of `allowed`; returns its index.
std::optional<size_t> enumField(Context& cx, const yaml::Node& map, std::string_view field,
                                const std::string& path, std::initializer_list<std::string_view> allowed) {
  auto node = child(map, field);
  if (!node) return std::nullopt;
  auto s = stringField(cx, *node, path);
  if (!s) return std::nullopt;
  auto it = std::find(allowed.begin(), allowed.end(), *s);
  if (it != allowed.end()) return static_cast<size_t>(it - allowed.begin());
  std::string list;
  for (size_t i = 0; i < allowed.size(); ++i)
    list += std::string(i == 0                    ? ""
                        : i + 1 == allowed.size() ? " or "
                                                  : ", ") +
            std::string(allowed.begin()[i]);
  cx.error(*node, path, "unsupported value \"" + *s + "\" (must be " + list + ")");
  return std::nullopt;
}

void loadServicePorts(Context& cx, const yaml::Node& ports, Service& service) {
  if (!expectSequence(cx, ports, "spec.ports")) return;
  std::set<std::string> names;
  std::set<std::pair<uint16_t, Protocol>> seen;
  for (size_t i = 0; i < ports.size(); ++i) {
    yaml::Node p = ports[i];
    std::string path = indexed("spec.ports", i);
    if (!expectMap(cx, p, path)) continue;
    ServicePort port;
    if (auto n = child(p, "name")) {
      if (auto s = stringField(cx, *n, join(path, "name"))) {
        if (auto bad = selectors::validateDnsLabel(*s)) cx.error(*n, join(path, "name"), *bad);
        if (!names.insert(*s).second) cx.error(*n, join(path, "name"), "duplicate port name \"" + *s + "\"");
        port.name = *s;
      }
    } else if (ports.size() > 1) {
      cx.error(p, join(path, "name"), "required when a service has more than one port");
    }
    if (auto n = child(p, "protocol")) {
      if (auto v = protocolField(cx, *n, join(path, "protocol"))) port.protocol = *v;
    }
    if (auto n = child(p, "port")) {
      if (auto v = portNumber(cx, *n, join(path, "port"))) port.port = *v;
    } else {
      cx.error(p, join(path, "port"), "required");
    }
    port.targetPort = port.port;  // the API server's default
    if (auto n = child(p, "targetPort")) {
      std::string tPath = join(path, "targetPort");
      if (isPlainInteger(*n)) {
        if (auto v = portNumber(cx, *n, tPath)) port.targetPort = *v;
      } else if (auto s = stringField(cx, *n, tPath)) {
        if (!isValidPortName(*s)) cx.error(*n, tPath, kPortNameRule);
        port.targetPort = *s;
      }
    }
    if (auto n = child(p, "nodePort")) {
      if (auto v = portNumber(cx, *n, join(path, "nodePort"))) {
        if (service.type != ServiceType::kNodePort && service.type != ServiceType::kLoadBalancer)
          cx.error(*n, join(path, "nodePort"), "may not be used when `type` is 'ClusterIP'");
        port.nodePort = *v;
      }
    }
    if (port.port && !seen.insert({port.port, port.protocol}).second)
      cx.error(p, path,
               "duplicate port " + std::to_string(port.port) + "/" + std::string(toString(port.protocol)));
    service.ports.push_back(std::move(port));
  }
}

void loadClusterIPs(Context& cx, const yaml::Node& spec, Service& service) {
  std::optional<std::string> single;
  if (auto n = child(spec, "clusterIP")) single = stringField(cx, *n, "spec.clusterIP");
  std::vector<std::string> listed;
  if (auto n = child(spec, "clusterIPs"); n && expectSequence(cx, *n, "spec.clusterIPs")) {
    for (size_t i = 0; i < n->size(); ++i)
      if (auto s = stringField(cx, (*n)[i], indexed("spec.clusterIPs", i))) listed.push_back(*s);
    if (single && !single->empty() && !listed.empty() && listed[0] != *single)
      cx.error(*n, "spec.clusterIPs", "the first entry must match spec.clusterIP \"" + *single + "\"");
  }
  if (listed.empty() && single && !single->empty()) listed.push_back(*single);
  auto where = child(spec, listed.size() > 1 || !child(spec, "clusterIP") ? "clusterIPs" : "clusterIP");
  for (const auto& text : listed) {
    if (text == "None") {  // headless: no virtual address, so nothing to translate
      if (listed.size() > 1)
        cx.error(where ? *where : spec, "spec.clusterIPs", "\"None\" must be the only entry");
      service.clusterIPs.clear();
      return;
    }
    auto ip = IpAddress::parse(text);
    if (!ip) {
      cx.error(where ? *where : spec, listed.size() > 1 ? "spec.clusterIPs" : "spec.clusterIP",
               ip.error().message);
      continue;
    }
    for (const auto& have : service.clusterIPs)
      if (have.family() == ip->family())
        cx.error(where ? *where : spec, "spec.clusterIPs", "may hold one address of each family");
    service.clusterIPs.push_back(*ip);
  }
}

}  // namespace

void loadService(Context& cx, const yaml::Node& object, ClusterState& state) {
  auto meta = metadataField(cx, object, "Service", true, "default");
  if (!meta) return;
  Service service{.ns = meta->ns, .name = meta->name, .where = cx.start()};
  if (auto spec = child(object, "spec"); spec && expectMap(cx, *spec, "spec")) {
    if (auto t = enumField(cx, *spec, "type", "spec.type",
                           {"ClusterIP", "NodePort", "LoadBalancer", "ExternalName"}))
      service.type = static_cast<ServiceType>(*t);
    if (service.type != ServiceType::kExternalName) loadClusterIPs(cx, *spec, service);
    if (auto n = child(*spec, "ports")) loadServicePorts(cx, *n, service);
    if (auto n = child(*spec, "externalIPs")) service.externalIPs = addressList(cx, *n, "spec.externalIPs");
    auto affinity = enumField(cx, *spec, "sessionAffinity", "spec.sessionAffinity", {"None", "ClientIP"});
    if (affinity == 1u) service.affinitySeconds = 10800;  // the API server's default: three hours
    if (auto config = child(*spec, "sessionAffinityConfig");
        config && expectMap(cx, *config, "spec.sessionAffinityConfig")) {
      auto timeout = child(*config, "clientIP");
      if (timeout && expectMap(cx, *timeout, "spec.sessionAffinityConfig.clientIP"))
        timeout = child(*timeout, "timeoutSeconds");
      if (timeout) {
        const std::string path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds";
        if (affinity != 1u) {
          cx.error(*timeout, path, "must not be set when `sessionAffinity` is not ClientIP");
        } else if (auto v = intField(cx, *timeout, path)) {
          if (*v < 1 || *v > 86400)
            cx.error(*timeout, path, std::to_string(*v) + " must be between 1 and 86400 seconds");
          else
            service.affinitySeconds = static_cast<uint32_t>(*v);
        }
      }
    }
    if (auto p = enumField(cx, *spec, "externalTrafficPolicy", "spec.externalTrafficPolicy",
                           {"Cluster", "Local"})) {
      if (service.type != ServiceType::kNodePort && service.type != ServiceType::kLoadBalancer)
        cx.error(*child(*spec, "externalTrafficPolicy"), "spec.externalTrafficPolicy",
                 "may only be set when `type` is 'NodePort' or 'LoadBalancer'");
      service.externalTrafficPolicy = static_cast<TrafficPolicy>(*p);
    }
    if (auto p =
            enumField(cx, *spec, "internalTrafficPolicy", "spec.internalTrafficPolicy", {"Cluster", "Local"}))
      service.internalTrafficPolicy = static_cast<TrafficPolicy>(*p);
  }
  if (auto status = child(object, "status"); status && expectMap(cx, *status, "status")) {
    auto lb = child(*status, "loadBalancer");
    auto ingress = lb && expectMap(cx, *lb, "status.loadBalancer") ? child(*lb, "ingress") : std::nullopt;
    if (ingress && expectSequence(cx, *ingress, "status.loadBalancer.ingress")) {
      for (size_t i = 0; i < ingress->size(); ++i) {
        std::string path = indexed("status.loadBalancer.ingress", i);
        if (!expectMap(cx, (*ingress)[i], path)) continue;
        auto ip = child((*ingress)[i], "ip");  // an entry with only a hostname has no address to translate
        if (!ip) continue;
        auto s = stringField(cx, *ip, join(path, "ip"));
        if (!s) continue;
        auto parsed = IpAddress::parse(*s);
        if (!parsed)
          cx.error(*ip, join(path, "ip"), parsed.error().message);
        else
          service.loadBalancerIPs.push_back(*parsed);
      }
    }
  }
  if (cx.errors()) return;
  state.upsert(std::move(service));
}

void loadEndpointSlice(Context& cx, const yaml::Node& object, ClusterState& state) {
  auto meta = metadataField(cx, object, "EndpointSlice", true, "default");
  if (!meta) return;
  EndpointSlice slice{.ns = meta->ns, .name = meta->name, .where = cx.start()};
  if (auto* owner = meta->labels.find("kubernetes.io/service-name")) slice.serviceName = *owner;
  auto type = enumField(cx, object, "addressType", "addressType", {"IPv4", "IPv6", "FQDN"});
  if (!child(object, "addressType")) cx.error(object, "addressType", "required");
  if (type == 2u) {
    cx.warn(*child(object, "addressType"), "addressType", "FQDN endpoints are not translated to; skipped");
    return;
  }
  if (type) slice.family = *type == 0 ? Family::kV4 : Family::kV6;

  if (auto ports = child(object, "ports"); ports && expectSequence(cx, *ports, "ports")) {
    for (size_t i = 0; i < ports->size(); ++i) {
      yaml::Node p = (*ports)[i];
      std::string path = indexed("ports", i);
      if (!expectMap(cx, p, path)) continue;
      EndpointPort port;
      if (auto n = child(p, "name")) {
        if (auto s = stringField(cx, *n, join(path, "name"))) port.name = *s;
      }
      if (auto n = child(p, "protocol")) {
        if (auto v = protocolField(cx, *n, join(path, "protocol"))) port.protocol = *v;
      }
      if (auto n = child(p, "port")) {
        if (auto v = portNumber(cx, *n, join(path, "port"))) port.port = *v;
      }
      slice.ports.push_back(std::move(port));
    }
  }
  auto endpoints = child(object, "endpoints");
  if (!endpoints) cx.error(object, "endpoints", "required");
  if (endpoints && expectSequence(cx, *endpoints, "endpoints")) {
    for (size_t i = 0; i < endpoints->size(); ++i) {
      yaml::Node e = (*endpoints)[i];
      std::string path = indexed("endpoints", i);
      if (!expectMap(cx, e, path)) continue;
      SliceEndpoint endpoint;
      auto addresses = child(e, "addresses");
      if (!addresses) {
        cx.error(e, join(path, "addresses"), "required");
        continue;
      }
      endpoint.addresses = addressList(cx, *addresses, join(path, "addresses"));
      for (const auto& ip : endpoint.addresses)
        if (type && ip.family() != slice.family)
          cx.error(*addresses, join(path, "addresses"),
                   ip.toString() + " is not an address of the slice's addressType");
      if (endpoint.addresses.empty() && addresses->isSequence())
        cx.error(*addresses, join(path, "addresses"), "must have at least one address");
      if (auto c = child(e, "conditions"); c && expectMap(cx, *c, join(path, "conditions"))) {
        if (auto r = child(*c, "ready")) {
          if (auto b = boolField(cx, *r, join(path, "conditions.ready"))) endpoint.ready = *b;
        }
      }
      if (auto n = child(e, "nodeName")) {
        if (auto s = stringField(cx, *n, join(path, "nodeName"))) endpoint.nodeName = *s;
      }
      if (auto ref = child(e, "targetRef"); ref && expectMap(cx, *ref, join(path, "targetRef"))) {
        auto kind = child(*ref, "kind");
        if (kind && kind->isScalar() && kind->scalar() == "Pod") {
          endpoint.podNs = slice.ns;
          if (auto n = child(*ref, "namespace")) {
            if (auto s = stringField(cx, *n, join(path, "targetRef.namespace"))) endpoint.podNs = *s;
          }
          if (auto n = child(*ref, "name")) {
            if (auto s = stringField(cx, *n, join(path, "targetRef.name"))) endpoint.podName = *s;
          }
        }
      }
      slice.endpoints.push_back(std::move(endpoint));
    }
  }
  if (cx.errors()) return;
  state.upsert(std::move(slice));
}

void loadNode(Context& cx, const yaml::Node& object, ClusterState& state) {
  auto meta = metadataField(cx, object, "Node", false, "");
  if (!meta) return;
  Node node{.name = meta->name, .labels = std::move(meta->labels), .where = cx.start()};
  if (auto spec = child(object, "spec"); spec && expectMap(cx, *spec, "spec")) {
    std::vector<std::pair<yaml::Node, std::string>> cidrs;
    if (auto n = child(*spec, "podCIDRs"); n && expectSequence(cx, *n, "spec.podCIDRs")) {
      for (size_t i = 0; i < n->size(); ++i)
        cidrs.emplace_back((*n)[i], indexed("spec.podCIDRs", i));
    } else if (auto one = child(*spec, "podCIDR")) {
      cidrs.emplace_back(*one, "spec.podCIDR");
    }
    for (const auto& [n, path] : cidrs) {
      auto s = stringField(cx, n, path);
      if (!s) continue;
      auto cidr = Cidr::parse(*s);
      if (!cidr)
        cx.error(n, path, cidr.error().message);
      else
        node.podCIDRs.push_back(*cidr);
    }
  }
  if (auto status = child(object, "status"); status && expectMap(cx, *status, "status")) {
    if (auto addresses = child(*status, "addresses");
        addresses && expectSequence(cx, *addresses, "status.addresses")) {
      for (size_t i = 0; i < addresses->size(); ++i) {
        yaml::Node a = (*addresses)[i];
        std::string path = indexed("status.addresses", i);
        if (!expectMap(cx, a, path)) continue;
        auto type = child(a, "type");
        std::string typeName = type && type->isScalar() ? type->scalar() : "";
        // InternalIP and ExternalIP hold addresses; Hostname, InternalDNS and ExternalDNS names, which only a
        // nodes peer would read, and only when one is an address.
        bool anAddress = typeName == "InternalIP" || typeName == "ExternalIP";
        auto address = child(a, "address");
        if (!address) {
          if (anAddress) cx.error(a, join(path, "address"), "required");
          continue;
        }
        if (!anAddress) {
          if (address->isScalar())
            if (auto ip = IpAddress::parse(address->scalar())) node.addresses.push_back(*ip);
          continue;
        }
        auto s = stringField(cx, *address, join(path, "address"));
        if (!s) continue;
        auto ip = IpAddress::parse(*s);
        if (!ip) {
          cx.error(*address, join(path, "address"), ip.error().message);
          continue;
        }
        if (typeName == "InternalIP") node.internalIPs.push_back(*ip);
        node.addresses.push_back(*ip);
      }
    }
  }
  if (cx.errors()) return;
  state.upsert(std::move(node));
}

}  // namespace nftpol::policy::load
