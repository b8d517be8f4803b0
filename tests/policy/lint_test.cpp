#include "helpers.h"
#include "nftpol/policy/explain.h"

using namespace nftpol;
using namespace nftpol::policy;
using namespace nftpol::testing;

TEST_CASE("lint warns about policies that are valid but probably wrong", "[lint]") {
  TestCluster c(ns("a") +
                pod("a", "web", "{app: web}", "[{ip: 10.244.0.1}]", "", "[{name: http, containerPort: 80}]") +
                netpol("a", "nobody", "  podSelector: {matchLabels: {app: ghost}}\n") +
                netpol("a", "p", R"(  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: ghost}}
    ports:
    - port: grpc
  - {}
  egress:
  - ports:
    - port: http
)"));
  std::vector<std::string> got;
  for (const auto& d : lint(*c.compiled))
    got.push_back(d.toString());
  CHECK(
      got ==
      std::vector<std::string>{
          "test.yaml:23:1: warning: NetworkPolicy a/nobody: spec.podSelector: selects no pod {app=ghost} in "
          "namespace a",
          "test.yaml:39:5: warning: NetworkPolicy a/p: spec.ingress[0]: shadowed by spec.ingress[1], which "
          "allows all ingress traffic",
          "test.yaml:39:5: warning: NetworkPolicy a/p: spec.ingress[0].from[0]: matches no pod (namespace a, "
          "pods {app=ghost})",
          "test.yaml:39:5: warning: NetworkPolicy a/p: spec.ingress[0].ports[0]: named port TCP/grpc "
          "resolves "
          "on no selected pod",
      });
}

TEST_CASE("explain resolves selectors, peers and named ports", "[explain]") {
  TestCluster c(
      ns("a") + ns("b", "{team: red}") +
      pod("a", "web", "{app: web}", "[{ip: 10.244.0.1}]", "", "[{name: http, containerPort: 8080}]") +
      pod("b", "client", "{app: client}", "[{ip: 10.244.1.1}]") +
      netpol("a", "p", R"(  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: red}}
    - ipBlock: {cidr: 10.244.1.0/24, except: [10.244.1.128/25]}
    ports:
    - port: http
)"));
  CHECK(explainPolicy(*c.compiled, 0) ==
        "NetworkPolicy a/p (test.yaml:43:1)\n"
        "  podSelector {app=web} selects 1 pod(s): a/web\n"
        "  policyTypes: Ingress\n"
        "  ingress[0]:\n"
        "    from[0] namespaces {team=red}, pods {} -> namespaces [b], b/client\n"
        "    from[1] ipBlock 10.244.1.0/24 except 10.244.1.128/25 (cluster pods inside: b/client)\n"
        "    ports[0] TCP/http (a/web=8080)\n");
}
