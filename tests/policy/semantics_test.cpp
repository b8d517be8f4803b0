// The NetworkPolicy semantics checklist of DESIGN.md, one test (or section) per line.
#include "helpers.h"

using namespace nftpol;
using namespace nftpol::policy;
using namespace nftpol::testing;

namespace {

// Namespaces a (team=blue) and b (team=red); pods web/db in a, client in b.
std::string base() {
  return ns("a", "{team: blue}") + ns("b", "{team: red}") +
         pod("a", "web", "{app: web, tier: front}", "[{ip: 10.244.0.1}]", "",
             "[{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}]") +
         pod("a", "db", "{app: db}", "[{ip: 10.244.0.2}]", "", "[{name: http, containerPort: 9000}]") +
         pod("b", "client", "{app: client}", "[{ip: 10.244.1.1}]");
}

}  // namespace

TEST_CASE("a policy selects pods in its own namespace, and {} selects all of them", "[semantics]") {
  TestCluster c(base() + netpol("a", "deny", "  podSelector: {}\n"));
  REQUIRE(c.errors().empty());
  CHECK_FALSE(c.reach("b/client", "a/web", 80));
  CHECK_FALSE(c.reach("b/client", "a/db", 80));
  CHECK(c.reach("a/web", "b/client", 80));  // b is not selected by a policy in a
}

TEST_CASE("selector requirements are AND-ed, and NotIn and DoesNotExist match pods lacking the key",
          "[semantics]") {
  SECTION("AND") {
    TestCluster c(base() + netpol("a", "deny", R"(  podSelector:
    matchLabels: {app: web}
    matchExpressions: [{key: tier, operator: In, values: [back]}]
)"));
    CHECK(c.reach("b/client", "a/web", 80));  // tier=front fails the second requirement
  }
  SECTION("NotIn matches a pod without the key") {
    TestCluster c(base() + netpol("a", "deny",
                                  "  podSelector:\n    matchExpressions: [{key: tier, operator: NotIn, "
                                  "values: [front]}]\n"));
    CHECK(c.reach("b/client", "a/web", 80));
    CHECK_FALSE(c.reach("b/client", "a/db", 80));  // db has no tier label
  }
  SECTION("DoesNotExist matches a pod without the key") {
    TestCluster c(base() + netpol("a", "deny",
                                  "  podSelector:\n    matchExpressions: [{key: tier, operator: "
                                  "DoesNotExist}]\n"));
    CHECK(c.reach("b/client", "a/web", 80));
    CHECK_FALSE(c.reach("b/client", "a/db", 80));
  }
  SECTION("Exists") {
    TestCluster c(base() + netpol("a", "deny",
                                  "  podSelector:\n    matchExpressions: [{key: tier, operator: Exists}]\n"));
    CHECK_FALSE(c.reach("b/client", "a/web", 80));
    CHECK(c.reach("b/client", "a/db", 80));
  }
}

TEST_CASE("policyTypes defaulting follows the API server", "[semantics]") {
  SECTION("no egress field: Ingress only") {
    TestCluster c(base() + netpol("a", "p", "  podSelector: {matchLabels: {app: web}}\n"));
    CHECK(c.reach("a/web", "b/client", 80));
    CHECK_FALSE(c.reach("b/client", "a/web", 80));
  }
  SECTION("egress: [] adds nothing") {
    TestCluster c(base() + netpol("a", "p", "  podSelector: {matchLabels: {app: web}}\n  egress: []\n"));
    CHECK(c.reach("a/web", "b/client", 80));
    CHECK_FALSE(c.compiled->isolated(*c.compiled->findPod("a", "web"), Direction::kEgress));
  }
  SECTION("egress: [{}] adds Egress and allows all") {
    TestCluster c(base() + netpol("a", "p", "  podSelector: {matchLabels: {app: web}}\n  egress: [{}]\n"));
    CHECK(c.compiled->isolated(*c.compiled->findPod("a", "web"), Direction::kEgress));
    CHECK(c.reach("a/web", "b/client", 80));
    CHECK_FALSE(c.reach("b/client", "a/web", 80));  // and Ingress, with no rules
  }
  SECTION("egress rules given but policyTypes [Ingress]: egress ignored") {
    TestCluster c(base() + netpol("a", "p",
                                  "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Ingress]\n"
                                  "  egress: [{ports: [{port: 1}]}]\n  ingress: [{}]\n"));
    CHECK(c.reach("a/web", "b/client", 80));
  }
  SECTION("policyTypes [Egress] without rules denies all egress and leaves ingress open") {
    TestCluster c(base() +
                  netpol("a", "p", "  podSelector: {matchLabels: {app: web}}\n  policyTypes: [Egress]\n"));
    CHECK_FALSE(c.reach("a/web", "b/client", 80));
    CHECK(c.reach("b/client", "a/web", 80));
  }
}

TEST_CASE("isolation is per direction and allowed traffic is the union of the selecting policies",
          "[semantics]") {
  TestCluster c(
      base() +
      netpol("a", "p1", "  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - ports: [{port: 80}]\n") +
      netpol("a", "p2", "  podSelector: {matchLabels: {app: web}}\n  ingress:\n  - ports: [{port: 81}]\n"));
  CHECK(c.reach("b/client", "a/web", 80));
  CHECK(c.reach("b/client", "a/web", 81));
  CHECK_FALSE(c.reach("b/client", "a/web", 82));
  CHECK(c.reach("b/client", "a/db", 82));  // db is selected by neither
  auto v = c.verdicts("b/client", "a/web", 81);
  REQUIRE(v.size() == 1);
  CHECK(v[0].ingress.isolating.size() == 2);
  REQUIRE(v[0].ingress.hits.size() == 1);
  CHECK(c.compiled->policies()[c.compiled->rules()[v[0].ingress.hits[0].rule].policy].policy->name == "p2");
}

TEST_CASE("a connection needs the source's egress and the destination's ingress", "[semantics]") {
  TestCluster c(base() + netpol("b", "egress-none", "  podSelector: {}\n  policyTypes: [Egress]\n") +
                netpol("a", "ingress-all", "  podSelector: {}\n  ingress: [{}]\n"));
  CHECK_FALSE(c.reach("b/client", "a/web", 80));  // ingress allows, egress does not
  auto v = c.verdicts("b/client", "a/web", 80);
  CHECK_FALSE(v[0].egress.allowed);
  CHECK(v[0].ingress.allowed);
}

TEST_CASE("peers are OR-ed, ports are OR-ed, and the two are AND-ed, and missing means all", "[semantics]") {
  TestCluster c(base() + netpol("a", "p", R"(  podSelector: {matchLabels: {app: web}}
  ingress:
  - from:
    - podSelector: {matchLabels: {app: db}}
    - namespaceSelector: {matchLabels: {team: red}}
    ports: [{port: 80}, {port: 443}]
)"));
  CHECK(c.reach("a/db", "a/web", 80));
  CHECK(c.reach("b/client", "a/web", 443));
  CHECK_FALSE(c.reach("b/client", "a/web", 8080));
  SECTION("missing from: all peers, including addresses outside the cluster") {
    TestCluster all(base() + netpol("a", "p", "  podSelector: {}\n  ingress: [{ports: [{port: 80}]}]\n"));
    CHECK(all.reach("192.0.2.1", "a/web", 80));
    CHECK_FALSE(all.reach("192.0.2.1", "a/web", 81));
  }
  SECTION("ingress: [] allows nothing") {
    TestCluster none(base() + netpol("a", "p", "  podSelector: {}\n  ingress: []\n"));
    CHECK_FALSE(none.reach("a/db", "a/web", 80));
  }
}

TEST_CASE("peer forms", "[semantics]") {
  SECTION("podSelector alone means pods of the policy's namespace") {
    TestCluster c(base() + pod("b", "web", "{app: web}", "[{ip: 10.244.1.2}]") +
                  netpol("a", "p",
                         "  podSelector: {matchLabels: {app: db}}\n  ingress: [{from: [{podSelector: "
                         "{matchLabels: {app: web}}}]}]\n"));
    CHECK(c.reach("a/web", "a/db", 80));
    CHECK_FALSE(c.reach("b/web", "a/db", 80));
  }
  SECTION("namespaceSelector alone means every pod of the matching namespaces") {
    TestCluster c(base() + netpol("a", "p",
                                  "  podSelector: {}\n  ingress: [{from: [{namespaceSelector: "
                                  "{matchLabels: {team: red}}}]}]\n"));
    CHECK(c.reach("b/client", "a/web", 80));
    CHECK_FALSE(c.reach("a/db", "a/web", 80));
  }
  SECTION("both in one peer mean matching pods in matching namespaces") {
    TestCluster c(base() + pod("b", "other", "{app: other}", "[{ip: 10.244.1.3}]") +
                  netpol("a", "p",
                         "  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: "
                         "{team: red}}, podSelector: {matchLabels: {app: client}}}]}]\n"));
    CHECK(c.reach("b/client", "a/web", 80));
    CHECK_FALSE(c.reach("b/other", "a/web", 80));
  }
  SECTION("ipBlock is cidr minus except, matched against pod and outside addresses, IPv4 and IPv6") {
    TestCluster c(base() + pod("b", "v6", "{app: v6}", "[{ip: 'fd00::5'}]") +
                  netpol("a", "p", R"(  podSelector: {}
  ingress:
  - from:
    - ipBlock: {cidr: 10.244.0.0/16, except: [10.244.1.0/24]}
    - ipBlock: {cidr: 'fd00::/64', except: ['fd00::5/128']}
    - ipBlock: {cidr: 192.0.2.0/24}
)"));
    CHECK(c.reach("a/db", "a/web", 80));
    CHECK_FALSE(c.reach("b/client", "a/web", 80));  // in the except
    CHECK(c.reach("192.0.2.7", "a/web", 80));
    CHECK_FALSE(c.reach("198.51.100.1", "a/web", 80));
    CHECK(c.reach("fd00::6", "a/web", 80) == false);  // web has no IPv6 address: no common family
  }
}

TEST_CASE("ports: protocol default, names on the destination, ranges, protocol-only entries", "[semantics]") {
  SECTION("protocol defaults to TCP") {
    TestCluster c(base() + netpol("a", "p", "  podSelector: {}\n  ingress: [{ports: [{port: 53}]}]\n"));
    CHECK(c.reach("b/client", "a/web", 53, Protocol::kTCP));
    CHECK_FALSE(c.reach("b/client", "a/web", 53, Protocol::kUDP));
  }
  SECTION("a named port resolves per destination pod in ingress") {
    TestCluster c(base() + netpol("a", "p", "  podSelector: {}\n  ingress: [{ports: [{port: http}]}]\n"));
    CHECK(c.reach("b/client", "a/web", 8080));
    CHECK_FALSE(c.reach("b/client", "a/web", 9000));
    CHECK(c.reach("b/client", "a/db", 9000));
    CHECK_FALSE(c.reach("b/client", "a/db", 8080));
  }
  SECTION("a named port matches name and protocol") {
    TestCluster c(
        base() + netpol("a", "p", "  podSelector: {}\n  ingress: [{ports: [{port: dns, protocol: UDP}]}]\n"));
    CHECK(c.reach("b/client", "a/web", 53, Protocol::kUDP));
    CHECK_FALSE(c.reach("b/client", "a/web", 53, Protocol::kTCP));
    CHECK_FALSE(c.reach("b/client", "a/db", 53, Protocol::kUDP));  // db has no port named dns
  }
  SECTION("a named port in egress resolves on the destination; outside addresses never match it") {
    TestCluster c(base() + netpol("b", "p", "  podSelector: {}\n  egress: [{ports: [{port: http}]}]\n"));
    CHECK(c.reach("b/client", "a/web", 8080));
    CHECK(c.reach("b/client", "a/db", 9000));
    CHECK_FALSE(c.reach("b/client", "a/db", 8080));
    CHECK_FALSE(c.reach("b/client", "192.0.2.1", 8080));
  }
  SECTION("endPort makes an inclusive range") {
    TestCluster c(
        base() +
        netpol("a", "p", "  podSelector: {}\n  ingress: [{ports: [{port: 8000, endPort: 8100}]}]\n"));
    CHECK_FALSE(c.reach("b/client", "a/web", 7999));
    CHECK(c.reach("b/client", "a/web", 8000));
    CHECK(c.reach("b/client", "a/web", 8100));
    CHECK_FALSE(c.reach("b/client", "a/web", 8101));
  }
  SECTION("an entry with only a protocol means every port of it; SCTP is its own protocol") {
    TestCluster c(base() + netpol("a", "p", "  podSelector: {}\n  ingress: [{ports: [{protocol: SCTP}]}]\n"));
    CHECK(c.reach("b/client", "a/web", 1, Protocol::kSCTP));
    CHECK(c.reach("b/client", "a/web", 65535, Protocol::kSCTP));
    CHECK_FALSE(c.reach("b/client", "a/web", 1, Protocol::kTCP));
    CHECK_FALSE(c.reach("b/client", "a/web", 1, Protocol::kUDP));
  }
}

TEST_CASE("namespaces carry kubernetes.io/metadata.name", "[semantics]") {
  TestCluster c(base() + netpol("a", "p",
                                "  podSelector: {}\n  ingress: [{from: [{namespaceSelector: {matchLabels: "
                                "{kubernetes.io/metadata.name: b}}}]}]\n"));
  CHECK(c.reach("b/client", "a/web", 80));
  CHECK_FALSE(c.reach("a/db", "a/web", 80));
  CHECK(*c.state->findNamespace("a")->labels.find("kubernetes.io/metadata.name") == "a");
}

TEST_CASE("pods without an address, finished pods and host-network pods are ignored", "[semantics]") {
  TestCluster c(base() + pod("a", "pending", "{app: web}", "") +
                pod("a", "host", "{app: web}", "[{ip: 192.168.1.1}]", "  hostNetwork: true\n") +
                "---\napiVersion: v1\nkind: Pod\nmetadata: {name: done, namespace: a, labels: {app: web}}\n"
                "status: {phase: Succeeded, podIP: 10.244.0.9}\n" +
                "---\napiVersion: v1\nkind: Pod\nmetadata: {name: failed, namespace: a, labels: {app: web}}\n"
                "status: {phase: Failed, podIP: 10.244.0.10}\n" +
                netpol("a", "p", "  podSelector: {matchLabels: {app: web}}\n"));
  REQUIRE(c.errors().empty());
  CHECK(c.compiled->pods().size() == 3);
  CHECK(c.compiled->policies()[0].selected.size() == 1);
  for (const char* name : {"a/pending", "a/host", "a/done", "a/failed"}) {
    INFO(name);
    CHECK_FALSE(resolveEndpoint(*c.compiled, name).ok());
  }
  CHECK(resolveEndpoint(*c.compiled, "a/host").error().message ==
        "pod a/host uses the host network; NetworkPolicy does not apply to it");
  // A finished pod's address is just an address: it is not a member of any selector peer.
  CHECK_FALSE(c.compiled->podByAddress(*IpAddress::parse("10.244.0.9")));
}

TEST_CASE("traffic a pod sends to itself is always allowed", "[semantics]") {
  TestCluster c(base() + netpol("a", "p", "  podSelector: {}\n  policyTypes: [Ingress, Egress]\n"));
  CHECK(c.reach("a/web", "a/web", 80));
  CHECK(c.verdicts("a/web", "a/web", 80)[0].because == Because::kSelf);
  CHECK_FALSE(c.reach("a/web", "a/db", 80));
}

TEST_CASE("dual-stack pods have every address considered", "[semantics]") {
  TestCluster c(ns("a") + pod("a", "x", "{app: x}", "[{ip: 10.244.0.1}, {ip: 'fd00::1'}]") +
                pod("a", "y", "{app: y}", "[{ip: 10.244.0.2}, {ip: 'fd00::2'}]") +
                netpol("a", "v4-only",
                       "  podSelector: {matchLabels: {app: y}}\n  ingress: [{from: [{ipBlock: {cidr: "
                       "10.244.0.0/24}}]}]\n"));
  auto v = c.verdicts("a/x", "a/y", 80);
  REQUIRE(v.size() == 2);
  CHECK(v[0].family == Family::kV4);
  CHECK(v[0].allowed);
  CHECK(v[1].family == Family::kV6);
  CHECK_FALSE(v[1].allowed);
  CHECK(c.reach("a/x", "a/y", 80));
  // Either address names the pod.
  CHECK(c.reach("fd00::1", "a/y", 80) == false);
  CHECK(*c.endpoint("fd00::1").pod == *c.compiled->findPod("a", "x"));
}

namespace {
std::string auditedNetpol(const std::string& ns, const std::string& name, const std::string& mode,
                          const std::string& spec) {
  return "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: " + name +
         "\n  namespace: " + ns + "\n  annotations: {nftpol.io/mode: " + mode + "}\nspec:\n" + spec;
}
}  // namespace

TEST_CASE("a policy in audit mode isolates nothing, and counted as enforced it isolates as written",
          "[semantics]") {
  TestCluster c(
      base() + auditedNetpol("a", "deny", "audit", "  podSelector: {}\n") +
      auditedNetpol("a", "web-only", "enforce",
                    "  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from:\n    - podSelector: "
                    "{matchLabels: {app: web}}\n"));
  CHECK(c.reach("b/client", "a/web", 80));       // the audited deny is not enforced
  CHECK_FALSE(c.reach("b/client", "a/db", 80));  // the enforced one is
  CHECK(c.reach("a/web", "a/db", 80));
  const Model& m = c.compiled->model();
  const Pod* web = m.findPod("a/web");
  REQUIRE(web);
  CHECK(m.isolating(*web, Direction::kIngress).empty());
  REQUIRE(m.isolatingAsEnforced(*web, Direction::kIngress).size() == 1);
  CHECK(m.isolatingAsEnforced(*web, Direction::kIngress)[0]->key() == "a/deny");
  // Its rules are still compiled, for explain and lint.
  auto id = c.compiled->findPolicy("a", "deny");
  REQUIRE(id);
  CHECK(c.compiled->policies()[*id].policy->audit);
}

TEST_CASE("the mode annotation takes audit or enforce, and says where anything else is", "[validation]") {
  TestCluster bad(base() + auditedNetpol("a", "deny", "dry-run", "  podSelector: {}\n"), ExpectErrors{});
  CHECK_THAT(bad.errors(),
             Catch::Contains("metadata.annotations[nftpol.io/mode]: unsupported value \"dry-run\" "
                             "(must be audit or enforce)"));
  CHECK_THAT(bad.errors(), Catch::Contains("test.yaml:"));
}
