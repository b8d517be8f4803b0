// The bitset matrix must agree with can-reach on every pair; the generator supplies varied clusters.
#include <random>

#include "generator.h"
#include "helpers.h"
#include "nftpol/policy/matrix.h"

using namespace nftpol;
using namespace nftpol::policy;

TEST_CASE("the 64x64 block transpose agrees with a bit-by-bit one", "[matrix]") {
  for (size_t n : {1, 63, 64, 65, 130}) {
    BitMatrix m(n);
    std::mt19937 rng(static_cast<unsigned>(n));
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j)
        if (rng() % 3 == 0) m.set(i, j);
    BitMatrix t = m.transposed();
    bool same = true;
    for (size_t i = 0; i < n; ++i)
      for (size_t j = 0; j < n; ++j)
        same = same && t.get(j, i) == m.get(i, j);
    INFO(n);
    CHECK(same);
    CHECK(t.transposed() == m);
  }
}

TEST_CASE("matrix agrees with can-reach on generated clusters", "[matrix]") {
  struct Row {
    uint64_t seed;
    bool dualStack;
    Protocol protocol;
    uint16_t port;
    uint32_t clusterPolicies = 0;
  };
  for (Row row : {Row{1, false, Protocol::kTCP, 8080}, Row{2, false, Protocol::kTCP, 9090},
                  Row{3, true, Protocol::kTCP, 5432}, Row{4, false, Protocol::kUDP, 53},
                  Row{5, true, Protocol::kTCP, 8050}, Row{6, false, Protocol::kTCP, 443},
                  // with cluster policies of both tiers: named ports, ranges, networks, nodes, domain names
                  Row{7, false, Protocol::kTCP, 8080, 12}, Row{8, false, Protocol::kTCP, 9090, 12},
                  Row{9, true, Protocol::kUDP, 5050, 12}, Row{10, false, Protocol::kTCP, 5432, 20}}) {
    ClusterState state = bench::generateCluster({.namespaces = 6,
                                                 .pods = 150,
                                                 .policies = 40,
                                                 .seed = row.seed,
                                                 .dualStack = row.dualStack,
                                                 .clusterPolicies = row.clusterPolicies});
    if (row.clusterPolicies) REQUIRE(state.clusterPolicies().size() == row.clusterPolicies);
    Compiled c = Compiled::build(state);
    REQUIRE(c.pods().size() > 100);
    BitMatrix m = reachability(c, row.protocol, row.port);
    size_t mismatches = 0, allowed = 0, byTier = 0;
    for (PodId i = 0; i < c.pods().size(); ++i)
      for (PodId j = 0; j < c.pods().size(); ++j) {
        auto verdicts = canReach(c, {Endpoint::ofPod(i), Endpoint::ofPod(j), row.protocol, row.port});
        bool expected = anyAllowed(verdicts);
        mismatches += expected != m.get(i, j);
        allowed += expected;
        for (const auto& v : verdicts)
          for (const SideVerdict* side : {&v.egress, &v.ingress})
            byTier += side->decidedBy == DecidedBy::kAdmin || side->decidedBy == DecidedBy::kBaseline;
      }
    INFO("seed " << row.seed << " port " << row.port);
    CHECK(mismatches == 0);
    if (row.clusterPolicies) CHECK(byTier > 0);  // the tiers decided some sides
    // The generated policies must make the comparison meaningful: some pairs allowed, some denied.
    CHECK(allowed > c.pods().size());
    CHECK(allowed < c.pods().size() * c.pods().size());
  }
}

TEST_CASE("the generator is deterministic from its seed", "[matrix]") {
  CHECK(bench::generateYaml({.seed = 7}) == bench::generateYaml({.seed = 7}));
  CHECK(bench::generateYaml({.seed = 7}) != bench::generateYaml({.seed = 8}));
  ClusterState state = bench::generateCluster({.namespaces = 10, .pods = 200, .policies = 50});
  CHECK(state.pods().size() == 200);
  CHECK(state.policies().size() == 50);
}

// The flattened per-pod allowances (what the nftables renderer reads) must admit exactly what can-reach
// admits.
TEST_CASE("allowances agree with can-reach", "[compiled]") {
  ClusterState state =
      bench::generateCluster({.namespaces = 8, .pods = 160, .policies = 60, .seed = 11, .dualStack = true});
  Compiled c = Compiled::build(state);
  auto admits = [&](PodId self, Direction d, PodId other, Family f, Protocol protocol, uint16_t port) {
    if (!c.isolated(self, d)) return true;
    for (const Allowance& a : c.allowances(self, d)) {
      bool peer = a.allPeers;
      const Pod* otherPod = c.pods()[other];
      for (const auto& p : a.peers) {
        if (const auto* shared = std::get_if<const SharedPeer*>(&p)) {
          peer = peer || (*shared)->members.contains(otherPod);
        } else {
          const IpAddress* ip = otherPod->address(f);
          peer = peer || (ip && std::get<const IpBlock*>(p)->contains(*ip));
        }
      }
      bool ports = a.allPorts;
      for (const auto& m : a.ports)
        ports = ports || (m.protocol == protocol && m.first <= port && port <= m.last);
      if (peer && ports) return true;
      for (const auto& t : a.namedTargets)
        if (t.pod == c.pods()[other] && t.protocol == protocol && t.port == port) return true;
    }
    return false;
  };
  size_t checked = 0, mismatches = 0;
  for (uint16_t port : {53, 443, 5432, 8050, 8080, 9090}) {
    Protocol protocol = port == 53 ? Protocol::kUDP : Protocol::kTCP;
    for (PodId i = 0; i < c.pods().size(); i += 3) {
      for (PodId j = 0; j < c.pods().size(); j += 2) {
        if (i == j) continue;
        auto verdicts = canReach(c, {Endpoint::ofPod(i), Endpoint::ofPod(j), protocol, port});
        // Each side on its own: a conjunction would let a denied ingress hide a wrong egress answer.
        for (const Verdict& v : verdicts) {
          mismatches += admits(i, Direction::kEgress, j, *v.family, protocol, port) != v.egress.allowed;
          mismatches += admits(j, Direction::kIngress, i, *v.family, protocol, port) != v.ingress.allowed;
          ++checked;
        }
      }
    }
  }
  INFO(checked << " verdicts checked");
  CHECK(checked > 10000);
  CHECK(mismatches == 0);
}

TEST_CASE("what-if: the cells a change flips, both ways, and the pods that come and go", "[matrix]") {
  using nftpol::testing::netpol;
  using nftpol::testing::ns;
  using nftpol::testing::pod;
  using nftpol::testing::TestCluster;
  const std::string pods = ns("x") + pod("x", "a", "{app: a}", "[{ip: 10.0.0.1}]") +
                           pod("x", "b", "{app: b}", "[{ip: 10.0.0.2}]") +
                           pod("x", "c", "{app: c}", "[{ip: 10.0.0.3}]");
  // Before: b admits only a. After: b admits only c, pod a is gone and pod d has come.
  TestCluster before(pods + netpol("x", "b-from-a",
                                   "  podSelector: {matchLabels: {app: b}}\n"
                                   "  ingress: [{from: [{podSelector: {matchLabels: {app: a}}}]}]\n"));
  TestCluster after(ns("x") + pod("x", "b", "{app: b}", "[{ip: 10.0.0.2}]") +
                    pod("x", "c", "{app: c}", "[{ip: 10.0.0.3}]") +
                    pod("x", "d", "{app: d}", "[{ip: 10.0.0.4}]") +
                    netpol("x", "b-from-a",
                           "  podSelector: {matchLabels: {app: b}}\n"
                           "  ingress: [{from: [{podSelector: {matchLabels: {app: c}}}]}]\n"));
  auto diff = reachabilityDiff(*before.compiled, *after.compiled, Protocol::kTCP, 80);
  REQUIRE(diff.flips.size() == 1);  // c -> b opens; a -> b is gone with a, which is no flip
  CHECK(diff.flips[0].from == "x/c");
  CHECK(diff.flips[0].to == "x/b");
  CHECK(diff.flips[0].allowedAfter);
  CHECK(diff.addedPods == std::vector<std::string>{"x/d"});
  CHECK(diff.removedPods == std::vector<std::string>{"x/a"});

  auto back = reachabilityDiff(*after.compiled, *before.compiled, Protocol::kTCP, 80);
  REQUIRE(back.flips.size() == 1);
  CHECK_FALSE(back.flips[0].allowedAfter);
  CHECK(back.addedPods == std::vector<std::string>{"x/a"});
}
