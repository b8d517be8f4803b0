#pragma once

// can-reach when the destination may be a Service: what TO names, and a connection to a service judged at
// each backend it may be sent to (policy applies after DNAT, DESIGN.md).

#include <optional>
#include <string>
#include <vector>

#include "nftpol/policy/reach.h"
#include "nftpol/policy/services.h"

namespace nftpol::policy {

// What TO names: a pod or an outside address, or a service (by namespace/name, a virtual address or its DNS
// name). A namespace/name that is both a pod and a service is refused rather than guessed.
struct Target {
  std::optional<Endpoint> endpoint;
  const Service* service = nullptr;
  std::optional<IpAddress> virtualAddress;  // when the service was named by one of its addresses
};
Result<Target> resolveTarget(const Compiled& compiled, const Services& services, const std::string& text);

struct BackendVerdict {
  const Backend* backend;
  Endpoint endpoint;              // the backend's pod, or its address when it is none of the cluster's pods
  std::vector<Verdict> verdicts;  // of the translated connection, to the backend's port
  bool allowed = false;
};

struct ServiceReach {
  enum class Outcome : uint8_t { kAllowed, kPartlyAllowed, kDenied };
  Outcome outcome = Outcome::kDenied;
  const ResolvedServicePort* port = nullptr;
  // Every backend a connection from the source may be sent to, each chosen at random per connection: when
  // only some admit it, some connections fail.
  std::vector<BackendVerdict> backends;
  size_t admitted = 0;
  // Why there is no backend: traffic policy Local on the source's node left out those elsewhere.
  bool noneOnNode = false;
  std::string node;  // the source pod's node; empty for a source outside the cluster
};

// The connection from `from` to the service `to` names (to.service must be set) on the service's port
// (protocol, port). An error when the service has no such port, saying which ports it has.
Result<ServiceReach> canReachService(const Compiled& compiled, const Services& services, const Endpoint& from,
                                     const Target& to, Protocol protocol, uint16_t port);

}  // namespace nftpol::policy
