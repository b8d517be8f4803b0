#pragma once

// Service NAT, the part of a node's table that translates connections to services (kube-proxy's job), in the
// same table as the policy so that one transaction changes both. The shape:
//
//   nat-prerouting, nat-output    jump services
//   services                      ip daddr . meta l4proto . th dport vmap @service-ips-v4   (and -v6)
//                                 fib daddr type local meta l4proto . th dport vmap @service-nodeports
//   svc-<h>-v4                    [ip saddr @aff-<h> jump ep-<h> ...]  numgen random mod N vmap
//   @backends-<h>-v4 ext-<h>-v4                    (externalIPs, LoadBalancer IPs, NodePorts) masquerade
//   mark, then svc-<h> ep-<h>                        ip saddr <self> mark for masquerade; [update @aff]; dnat
//   to backend nat-postrouting               meta mark & 0x4000 == 0x4000 masquerade
//   filter-forward/input/output   a service port with no backend rejects at once (TCP reset, ICMP
//   unreachable)
//
// Every lookup is a hash lookup, so the per-packet cost does not grow with the number of services. Policy
// runs in filter-forward after the DNAT of nat-prerouting, so it judges the chosen backend.

#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "nftpol/nft/ruleset.h"
#include "nftpol/policy/services.h"

namespace nftpol::render::detail {

using namespace nftpol::nft;

constexpr uint32_t kMasqueradeMark = 0x4000;  // as kube-proxy marks it
// A pod reaching itself through a service: the hairpinned packet crosses the node's forward hook, where its
// own egress policy would otherwise judge it, but traffic a pod sends to itself is always allowed.
constexpr uint32_t kSelfMark = 0x8000;

struct ServiceParts {
  std::vector<Set> sets;
  std::vector<Map> maps;
  std::vector<Chain> chains;       // services, svc-*, ext-*, nodeport-*, ep-*
  std::vector<Chain> baseChains;   // filter-input, filter-output, nat-output, nat-postrouting, nat-prerouting
  std::vector<Rule> forwardRules;  // the no-backend rejects, for filter-forward
  bool empty() const { return sets.empty() && maps.empty() && chains.empty() && baseChains.empty(); }
};

// One Service's share: its chains (svc-, ext-, nodeport-, ep-) and sets (backends-, aff-), and its entries in
// the shared maps and reject sets. Rendered alone, so that a change of one service costs that service.
struct ServicePiece {
  std::string service;  // "namespace/name"
  std::vector<Chain> chains;
  std::vector<Set> sets;
  std::vector<Map> maps;
  // An element of a map or reject set all services share. Its text, made once when the service is
  // rendered, orders the combined elements as they always printed.
  struct Shared {
    std::string name;  // the map or set
    Key key;
    std::string text;   // toString(key)
    std::string chain;  // the map's jump target; empty in a reject set
  };
  std::vector<Shared> entries;   // into the service-ips and service-nodeports maps
  std::vector<Shared> rejected;  // into the no-endpoint sets
};
ServicePiece renderService(const std::vector<const policy::ResolvedServicePort*>& ports,
                           const std::string& node);

// The service part from every service's piece: the shared maps, the dispatch and the base chains. Empty when
// there is no piece.
ServiceParts combine(std::vector<const ServicePiece*> pieces);

}  // namespace nftpol::render::detail
