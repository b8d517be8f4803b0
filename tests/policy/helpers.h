#pragma once

#include <catch2/catch.hpp>
#include <memory>
#include <string>

#include "nftpol/policy/loader.h"
#include "nftpol/policy/reach.h"

namespace nftpol::testing {

// Given to TestCluster by a test that loads bad input on purpose, to look at the diagnostics.
struct ExpectErrors {};

// A cluster loaded from YAML text and compiled, with short ways to ask it questions. It fails the test when
// the text does not load cleanly (warnings aside), so that a test whose YAML is broken cannot pass by
// asserting "allowed" of a cluster that lost the policy; ExpectErrors{} loads whatever loads and keeps the
// diagnostics.
struct TestCluster {
  std::unique_ptr<policy::ClusterState> state = std::make_unique<policy::ClusterState>();
  std::vector<policy::Diagnostic> diagnostics;
  std::unique_ptr<policy::Compiled> compiled;

  explicit TestCluster(const std::string& yaml) : TestCluster(yaml, ExpectErrors{}) {
    INFO("the test's YAML does not load:\n" << errors() << yaml);
    REQUIRE_FALSE(policy::hasErrors(diagnostics));
  }
  TestCluster(const std::string& yaml, ExpectErrors) {
    policy::loadText(yaml, "test.yaml", *state, diagnostics);
    auto implied = state->implyMissingNamespaces();
    diagnostics.insert(diagnostics.end(), implied.begin(), implied.end());
    compiled = std::make_unique<policy::Compiled>(policy::Compiled::build(*state));
  }

  policy::Endpoint endpoint(const std::string& text) const {
    auto e = policy::resolveEndpoint(*compiled, text);
    INFO(text);
    REQUIRE(e.ok());
    return *e;
  }
  std::vector<policy::Verdict> verdicts(const std::string& from, const std::string& to, uint16_t port,
                                        policy::Protocol protocol = policy::Protocol::kTCP) const {
    return policy::canReach(*compiled, {endpoint(from), endpoint(to), protocol, port});
  }
  bool reach(const std::string& from, const std::string& to, uint16_t port,
             policy::Protocol protocol = policy::Protocol::kTCP) const {
    return policy::anyAllowed(verdicts(from, to, port, protocol));
  }
  std::string errors() const {
    std::string out;
    for (const auto& d : diagnostics)
      out += d.toString() + "\n";
    return out;
  }
};

// A pod manifest: labels as "k: v" lines are given inline as a flow map, e.g. "{app: web}".
inline std::string pod(const std::string& ns, const std::string& name, const std::string& labels,
                       const std::string& ip, const std::string& extraSpec = "",
                       const std::string& ports = "") {
  std::string out = "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
                    "\n  labels: " + labels + "\nspec:\n  nodeName: node-1\n" + extraSpec +
                    "  containers:\n  - name: c\n";
  if (!ports.empty()) out += "    ports: " + ports + "\n";
  out += "status:\n  phase: Running\n";
  if (!ip.empty()) out += "  podIPs: " + ip + "\n";
  return out;
}

inline std::string ns(const std::string& name, const std::string& labels = "{}") {
  return "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n  labels: " + labels + "\n";
}

inline std::string netpol(const std::string& ns, const std::string& name, const std::string& spec) {
  return "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\nspec:\n" + spec;
}

}  // namespace nftpol::testing
