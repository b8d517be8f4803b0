#pragma once

// Services as the data path sees them: for each port of each Service, its virtual addresses and the ready
// backends a connection to it is translated to, with named target ports resolved. The nft renderer makes its
// NAT maps from this, and `can-reach` follows a connection through it to each backend, so the two cannot
// differ.

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nftpol/policy/cluster.h"

namespace nftpol::policy {

// Where a connection to a service port is translated to.
struct Backend {
  IpAddress address;
  uint16_t port = 0;
  std::string nodeName;  // empty when the slice does not say
  std::string podKey;    // "namespace/name" when the endpoint names its pod
  bool operator==(const Backend&) const = default;
};

// One port of one Service, resolved.
struct ResolvedServicePort {
  const Service* service;  // into the ClusterState the Services were built from
  size_t portIndex;
  std::vector<Backend> backends;  // ready endpoints only, sorted by address, each (address, port) once

  const ServicePort& port() const { return service->ports[portIndex]; }
  // "namespace/name:port-name" (or ":port/PROTO" for an unnamed port): how rules and diagnostics name it.
  std::string name() const;
  // The backends a node sends a connection to: every one, or with the Local traffic policy that applies to
  // the connection (external for NodePort, external and LoadBalancer addresses; internal for cluster IPs)
  // only those on `node`.
  std::vector<const Backend*> backendsFor(bool external, const std::string& node) const;
};

class Services {
 public:
  // Resolves every port of every Service of `state` against its EndpointSlices. `state` must outlive the
  // result.
  static Services build(const ClusterState& state);
  // The same, with the pods (whose named container ports resolve a named target port that a slice does not
  // list) found through `findPod` instead of in `state`.
  using PodLookup = std::function<const Pod*(const std::string& ns, const std::string& name)>;
  static Services build(const ClusterState& state, const PodLookup& findPod);
  // The ports of one service of `state` only (what a change of that service or its slices touches).
  static Services buildOne(const ClusterState& state, const Service& service, const PodLookup& findPod);

  const std::vector<ResolvedServicePort>& ports() const { return ports_; }
  // The ports of service namespace/name (empty when there is no such service).
  std::vector<const ResolvedServicePort*> portsOf(const Service& service) const;
  // The service port a connection to a virtual address (a cluster IP, an external IP or a load-balancer IP)
  // is translated by.
  const ResolvedServicePort* byVirtualAddress(const IpAddress& address, Protocol protocol,
                                              uint16_t port) const;
  // The service port that owns a node port.
  const ResolvedServicePort* byNodePort(Protocol protocol, uint16_t nodePort) const;

  // A service named as kube-dns resolves it: "name.namespace.svc.cluster.local", "name.namespace.svc" or
  // "name.namespace"; or by one of its virtual addresses.
  const Service* byDnsName(std::string_view name) const;
  const Service* byAddress(const IpAddress& address) const;

 private:
  void resolve(const Service& service, const std::vector<const EndpointSlice*>& slices,
               const PodLookup& findPod);
  const ClusterState* state_ = nullptr;
  std::vector<ResolvedServicePort> ports_;
};

}  // namespace nftpol::policy
