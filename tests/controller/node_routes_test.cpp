// Which routes a node needs from the Node objects: every other node's pod subnets via its InternalIP.
#include <catch2/catch.hpp>

#include "nftpol/controller/node_routes.h"
#include "nftpol/policy/loader.h"

using namespace nftpol;

namespace {

policy::ClusterState nodes(const std::string& yaml) {
  policy::ClusterState state;
  std::vector<policy::Diagnostic> diagnostics;
  policy::loadText(yaml, "nodes.yaml", state, diagnostics);
  REQUIRE_FALSE(policy::hasErrors(diagnostics));
  return state;
}

std::vector<std::string> text(const std::vector<GatewayRoute>& routes) {
  std::vector<std::string> out;
  out.reserve(routes.size());
  for (const auto& r : routes)
    out.push_back(r.destination.toString() + " via " + r.gateway.toString());
  return out;
}

}  // namespace

TEST_CASE("each other node's pod subnets, via its InternalIP of the same family", "[routes]") {
  auto state = nodes(R"(apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Node, metadata: {name: n1}, spec: {podCIDRs: [10.244.1.0/24, "fd00:1::/64"]},
   status: {addresses: [{type: InternalIP, address: 172.18.0.11}, {type: InternalIP, address: "fd18::11"}]}}
- {apiVersion: v1, kind: Node, metadata: {name: n2}, spec: {podCIDRs: [10.244.2.0/24, "fd00:2::/64"]},
   status: {addresses: [{type: Hostname, address: n2}, {type: InternalIP, address: 172.18.0.12}]}}
- {apiVersion: v1, kind: Node, metadata: {name: n3}, spec: {podCIDR: 10.244.3.0/24},
   status: {addresses: [{type: ExternalIP, address: 198.51.100.3}]}}
- {apiVersion: v1, kind: Node, metadata: {name: n0}, spec: {podCIDR: 10.244.2.0/24},
   status: {addresses: [{type: InternalIP, address: 172.18.0.10}]}}
)");
  // n2's IPv6 subnet has no IPv6 InternalIP to go via; n3 has no InternalIP at all; 10.244.2.0/24 is claimed
  // by n0 and n2, and goes to n0, the first by name, whatever the order of the objects.
  CHECK(text(controller::desiredRoutes(state, "n1")) ==
        std::vector<std::string>{"10.244.2.0/24 via 172.18.0.10"});
  CHECK(text(controller::desiredRoutes(state, "n0")) ==
        std::vector<std::string>{"10.244.1.0/24 via 172.18.0.11", "fd00:1::/64 via fd18::11"});
  CHECK(text(controller::desiredRoutes(state, "elsewhere")).size() == 3);
  // This node's own subnets are never routed away: its Node's (n0 shares 10.244.2.0/24 with n2, and n2 gets
  // no route to it) and those of --pod-cidr.
  CHECK(text(controller::desiredRoutes(state, "n2")) ==
        std::vector<std::string>{"10.244.1.0/24 via 172.18.0.11", "fd00:1::/64 via fd18::11"});
  CHECK(text(controller::desiredRoutes(state, "elsewhere", {*Cidr::parse("10.244.0.0/16")})) ==
        std::vector<std::string>{"fd00:1::/64 via fd18::11"});
}
