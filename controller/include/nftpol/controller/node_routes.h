#pragma once

// Routes between nodes: a plain routed topology, no encapsulation. Every other node's pod subnet (Node
// spec.podCIDRs) is routed via that node's InternalIP (status.addresses) of the same family. The routes carry
// nftpol's routing protocol number, so the controller finds and removes its own stale ones and never touches
// anybody else's.

#include <cstdint>
#include <string>
#include <vector>

#include "nftpol/policy/cluster.h"
#include "nftpol/result.h"
#include "nftpol/rtnl.h"

namespace nftpol::controller {

// rtm_protocol of nftpol's routes (`ip route show proto 86`); unassigned in /etc/iproute2/rt_protos.
constexpr uint8_t kRouteProtocol = 86;

// The routes `node` needs, sorted. A subnet claimed by two nodes goes to the first by name, so the answer
// does not depend on object order; a node without an InternalIP of the subnet's family gets no route. This
// node's own pod subnets (its Node's, and `ownPodCidrs`, from --pod-cidr) are never routed away, whatever
// another Node object claims: a stale or mistaken claim must not take this node's pods off it.
std::vector<GatewayRoute> desiredRoutes(const policy::ClusterState& state, const std::string& node,
                                        const std::vector<Cidr>& ownPodCidrs = {});

// This node's own pod subnets: its Node's spec.podCIDRs and `extra` (--pod-cidr, what the CNI plugin
// reported), sorted, without repeats.
std::vector<Cidr> ownPodSubnets(const policy::ClusterState& state, const std::string& node,
                                const std::vector<Cidr>& extra);

struct RouteChanges {
  size_t added = 0;  // added or replaced
  size_t removed = 0;
};

// Makes the kernel's nftpol routes (in the calling thread's network namespace) equal to `desired`.
Result<RouteChanges> syncRoutes(const std::vector<GatewayRoute>& desired);

}  // namespace nftpol::controller
