#include "nftpol/controller/node_routes.h"

#include <algorithm>
#include <map>

namespace nftpol::controller {

std::vector<Cidr> ownPodSubnets(const policy::ClusterState& state, const std::string& node,
                                const std::vector<Cidr>& extra) {
  std::vector<Cidr> own = extra;
  if (const policy::Node* self = state.findNode(node))
    own.insert(own.end(), self->podCIDRs.begin(), self->podCIDRs.end());
  std::sort(own.begin(), own.end());
  own.erase(std::unique(own.begin(), own.end()), own.end());
  return own;
}

std::vector<GatewayRoute> desiredRoutes(const policy::ClusterState& state, const std::string& node,
                                        const std::vector<Cidr>& ownPodCidrs) {
  std::vector<Cidr> own = ownPodSubnets(state, node, ownPodCidrs);
  auto overlapsOwn = [&](const Cidr& c) {
    return std::any_of(own.begin(), own.end(), [&](const Cidr& o) { return o.covers(c) || c.covers(o); });
  };
  std::vector<const policy::Node*> nodes;
  for (const auto& n : state.nodes())
    nodes.push_back(&n);
  std::sort(nodes.begin(), nodes.end(), [](const auto* a, const auto* b) { return a->name < b->name; });
  std::map<Cidr, const policy::Node*> owner;
  for (const auto* n : nodes)
    for (const auto& cidr : n->podCIDRs)
      owner.try_emplace(cidr, n);
  std::vector<GatewayRoute> out;
  for (const auto& [cidr, n] : owner) {
    if (n->name == node || overlapsOwn(cidr)) continue;
    const Family family = cidr.family();
    auto via = std::find_if(n->internalIPs.begin(), n->internalIPs.end(),
                            [&](const IpAddress& ip) { return ip.family() == family; });
    if (via != n->internalIPs.end()) out.push_back({cidr, *via});
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<RouteChanges> syncRoutes(const std::vector<GatewayRoute>& desired) {
  auto rtnl = Rtnl::open();
  if (!rtnl) return Error{"routes: " + rtnl.error().message};
  auto current = rtnl->routesOf(kRouteProtocol);
  if (!current) return Error{"routes: cannot read them: " + current.error().message};
  RouteChanges changes;
  for (const auto& r : desired) {
    if (std::binary_search(current->begin(), current->end(), r)) continue;
    if (auto added = rtnl->replaceRoute(r, kRouteProtocol); !added)
      return Error{"routes: cannot route " + r.destination.toString() + " via " + r.gateway.toString() +
                   ": " + added.error().message};
    ++changes.added;
  }
  for (const auto& r : *current) {
    if (std::binary_search(desired.begin(), desired.end(), r)) continue;
    if (auto removed = rtnl->deleteRoute(r, kRouteProtocol); !removed)
      return Error{"routes: cannot remove the route to " + r.destination.toString() + ": " +
                   removed.error().message};
    ++changes.removed;
  }
  return changes;
}

}  // namespace nftpol::controller
