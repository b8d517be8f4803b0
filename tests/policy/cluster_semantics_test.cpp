// The ClusterNetworkPolicy checklist of DESIGN.md, one test (or section) per line, and the loader's
// validation of the three cluster policy kinds.
#include <map>
#include <random>
#include <set>

#include "generator.h"
#include "helpers.h"
#include "nftpol/policy/explain.h"
#include "nftpol/policy/matrix.h"

using namespace nftpol;
using namespace nftpol::policy;
using namespace nftpol::testing;

namespace {

// Namespaces a (team=blue) and b (team=red); pods web/db in a, client in b; a node with two addresses.
std::string base() {
  return ns("a", "{team: blue}") + ns("b", "{team: red}") +
         pod("a", "web", "{app: web}", "[{ip: 10.244.0.1}]", "",
             "[{name: http, containerPort: 8080}, {name: dns, containerPort: 53, protocol: UDP}]") +
         pod("a", "db", "{app: db}", "[{ip: 10.244.0.2}]", "", "[{name: http, containerPort: 9000}]") +
         pod("b", "client", "{app: client}", "[{ip: 10.244.1.1}]") +
         "---\napiVersion: v1\nkind: Node\nmetadata: {name: node-1, labels: {role: worker}}\n"
         "status:\n  addresses: [{type: InternalIP, address: 192.168.1.10}, {type: ExternalIP, address: "
         "203.0.113.10}, {type: Hostname, address: node-1}]\n";
}

std::string cnp(const std::string& name, const std::string& tier, int priority, const std::string& rest) {
  return "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata:\n  "
         "name: " +
         name + "\nspec:\n  tier: " + tier + "\n  priority: " + std::to_string(priority) + "\n" + rest;
}

const std::string kSubjectA = "  subject: {namespaces: {matchLabels: {team: blue}}}\n";
const std::string kSubjectB = "  subject: {namespaces: {matchLabels: {team: red}}}\n";
const std::string kFromB = "[{namespaces: {matchLabels: {team: red}}}]";
const std::string kToA = "[{namespaces: {matchLabels: {team: blue}}}]";

const SideVerdict& ingressOf(const TestCluster& c, const std::string& from, const std::string& to,
                             uint16_t port) {
  static std::vector<Verdict> keep;
  keep = c.verdicts(from, to, port);
  REQUIRE(keep.size() == 1);
  return keep[0].ingress;
}

}  // namespace

TEST_CASE("per direction the Admin tier decides first, then NetworkPolicy, then Baseline, then allow",
          "[semantics][cnp]") {
  SECTION("an Admin Deny beats a NetworkPolicy that allows") {
    TestCluster c(
        base() + netpol("a", "allow", "  podSelector: {}\n  ingress: [{}]\n") +
        cnp("deny", "Admin", 10, kSubjectA + "  ingress:\n  - {action: Deny, from: " + kFromB + "}\n"));
    CHECK_FALSE(c.reach("b/client", "a/web", 80));
    const auto& side = ingressOf(c, "b/client", "a/web", 80);
    CHECK(side.decidedBy == DecidedBy::kAdmin);
    REQUIRE(side.admin);
    CHECK(side.admin->action == Action::kDeny);
    CHECK(c.reach("a/db", "a/web", 80));  // the rule's peers are b's pods
  }
  SECTION("an Admin Accept beats a NetworkPolicy default deny") {
    TestCluster c(
        base() + netpol("a", "deny", "  podSelector: {}\n") +
        cnp("accept", "Admin", 10, kSubjectA + "  ingress:\n  - {action: Accept, from: " + kFromB + "}\n"));
    CHECK(c.reach("b/client", "a/web", 80));
    CHECK_FALSE(c.reach("a/db", "a/web", 80));  // not matched: NetworkPolicy decides
    CHECK(ingressOf(c, "a/db", "a/web", 80).decidedBy == DecidedBy::kNetworkPolicy);
  }
  SECTION("a Baseline Deny applies where no NetworkPolicy isolates the pod") {
    TestCluster c(base() + cnp("base", "Baseline", 10,
                               kSubjectA + "  ingress:\n  - {action: Deny, from: " + kFromB + "}\n"));
    CHECK_FALSE(c.reach("b/client", "a/web", 80));
    CHECK(ingressOf(c, "b/client", "a/web", 80).decidedBy == DecidedBy::kBaseline);
    CHECK(c.reach("a/db", "a/web", 80));
    CHECK(ingressOf(c, "a/db", "a/web", 80).decidedBy == DecidedBy::kDefault);
  }
  SECTION("where NetworkPolicy isolates the pod its answer is final: Baseline is not consulted") {
    TestCluster c(
        base() + netpol("a", "allow", "  podSelector: {}\n  ingress: [{}]\n") +
        cnp("base", "Baseline", 10, kSubjectA + "  ingress:\n  - {action: Deny, from: " + kFromB + "}\n"));
    CHECK(c.reach("b/client", "a/web", 80));
    const auto& side = ingressOf(c, "b/client", "a/web", 80);
    CHECK(side.decidedBy == DecidedBy::kNetworkPolicy);
    CHECK_FALSE(side.baseline);
  }
  SECTION("a pod NetworkPolicy isolates only for ingress gets Baseline's answer for egress") {
    TestCluster c(
        base() + netpol("a", "in", "  podSelector: {}\n  ingress: [{}]\n") +
        cnp("base", "Baseline", 10,
            kSubjectA + "  egress:\n  - {action: Deny, to: [{namespaces: {matchLabels: {team: red}}}]}\n"));
    CHECK_FALSE(c.reach("a/web", "b/client", 80));
    CHECK(c.verdicts("a/web", "b/client", 80)[0].egress.decidedBy == DecidedBy::kBaseline);
  }
}

TEST_CASE(
    "Accept is final for its side, and an egress Accept leaves the ingress of the destination to decide",
    "[semantics][cnp]") {
  TestCluster c(
      base() + netpol("b", "deny-in", "  podSelector: {}\n") +
      netpol("a", "deny-out", "  podSelector: {}\n  policyTypes: [Egress]\n") +
      cnp("out", "Admin", 1, kSubjectA + "  egress:\n  - {action: Accept, to: [{namespaces: {}}]}\n"));
  auto v = c.verdicts("a/web", "b/client", 80);
  REQUIRE(v.size() == 1);
  CHECK(v[0].egress.allowed);
  CHECK(v[0].egress.decidedBy == DecidedBy::kAdmin);  // NetworkPolicy's egress deny is not reached
  CHECK_FALSE(v[0].ingress.allowed);                  // but b's ingress still denies
  CHECK_FALSE(v[0].allowed);
}

TEST_CASE("Pass skips the rest of its tier: Admin to NetworkPolicy, Baseline to allow", "[semantics][cnp]") {
  SECTION("Admin Pass, then a later Admin Deny is skipped and NetworkPolicy decides") {
    TestCluster c(
        base() + netpol("a", "allow", "  podSelector: {}\n  ingress: [{}]\n") +
        cnp("pass", "Admin", 1, kSubjectA + "  ingress:\n  - {action: Pass, from: " + kFromB + "}\n") +
        cnp("deny", "Admin", 2, kSubjectA + "  ingress:\n  - {action: Deny, from: " + kFromB + "}\n"));
    CHECK(c.reach("b/client", "a/web", 80));
    const auto& side = ingressOf(c, "b/client", "a/web", 80);
    REQUIRE(side.admin);
    CHECK(side.admin->action == Action::kPass);
    CHECK(side.decidedBy == DecidedBy::kNetworkPolicy);
  }
  SECTION("Admin Pass with no NetworkPolicy goes on to Baseline") {
    TestCluster c(
        base() +
        cnp("pass", "Admin", 1, kSubjectA + "  ingress:\n  - {action: Pass, from: " + kFromB + "}\n") +
        cnp("base", "Baseline", 1, kSubjectA + "  ingress:\n  - {action: Deny, from: " + kFromB + "}\n"));
    CHECK_FALSE(c.reach("b/client", "a/web", 80));
    CHECK(ingressOf(c, "b/client", "a/web", 80).decidedBy == DecidedBy::kBaseline);
  }
  SECTION("Baseline Pass allows, skipping a later Baseline Deny") {
    TestCluster c(
        base() +
        cnp("pass", "Baseline", 1, kSubjectA + "  ingress:\n  - {action: Pass, from: " + kFromB + "}\n") +
        cnp("deny", "Baseline", 2, kSubjectA + "  ingress:\n  - {action: Deny, from: " + kFromB + "}\n"));
    CHECK(c.reach("b/client", "a/web", 80));
    CHECK(ingressOf(c, "b/client", "a/web", 80).decidedBy == DecidedBy::kDefault);
  }
}

TEST_CASE(
    "policies of a tier go by priority, equal priorities by key, rules by written order, first match wins",
    "[semantics][cnp]") {
  SECTION("lower priority first") {
    TestCluster c(
        base() +
        cnp("z-accept", "Admin", 1, kSubjectA + "  ingress:\n  - {action: Accept, from: " + kFromB + "}\n") +
        cnp("a-deny", "Admin", 2, kSubjectA + "  ingress:\n  - {action: Deny, from: " + kFromB + "}\n"));
    CHECK(c.reach("b/client", "a/web", 80));
  }
  SECTION("equal priorities: by key (cnp/a-deny before cnp/z-accept)") {
    TestCluster c(
        base() +
        cnp("z-accept", "Admin", 5, kSubjectA + "  ingress:\n  - {action: Accept, from: " + kFromB + "}\n") +
        cnp("a-deny", "Admin", 5, kSubjectA + "  ingress:\n  - {action: Deny, from: " + kFromB + "}\n"));
    CHECK_FALSE(c.reach("b/client", "a/web", 80));
    const auto& side = ingressOf(c, "b/client", "a/web", 80);
    REQUIRE(side.admin);
    CHECK(c.compiled->clusterPolicies()[side.admin->policy].policy->key() == "cnp/a-deny");
  }
  SECTION("within a policy the first matching rule wins, ports narrowing a rule") {
    TestCluster c(base() + cnp("p", "Admin", 1,
                               kSubjectA +
                                   "  ingress:\n"
                                   "  - {name: web-only, action: Accept, from: " +
                                   kFromB +
                                   ", protocols: [{tcp: {destinationPort: {number: 80}}}]}\n"
                                   "  - {name: rest, action: Deny, from: " +
                                   kFromB + "}\n"));
    CHECK(c.reach("b/client", "a/web", 80));
    CHECK_FALSE(c.reach("b/client", "a/web", 81));
    CHECK_FALSE(c.reach("b/client", "a/web", 80, Protocol::kUDP));
    const auto& side = ingressOf(c, "b/client", "a/web", 81);
    REQUIRE(side.admin);
    CHECK(side.admin->rule == 1);
  }
  SECTION("a port range, inclusive") {
    TestCluster c(base() + cnp("p", "Admin", 1,
                               kSubjectA + "  ingress:\n  - {action: Deny, from: " + kFromB +
                                   ", protocols: [{udp: {destinationPort: {range: {start: 5000, end: "
                                   "5010}}}}]}\n"));
    CHECK_FALSE(c.reach("b/client", "a/web", 5000, Protocol::kUDP));
    CHECK_FALSE(c.reach("b/client", "a/web", 5010, Protocol::kUDP));
    CHECK(c.reach("b/client", "a/web", 5011, Protocol::kUDP));
    CHECK(c.reach("b/client", "a/web", 5005, Protocol::kTCP));
  }
}

TEST_CASE("a named port resolves on the destination pod, whatever its protocol", "[semantics][cnp]") {
  TestCluster c(base() +
                cnp("p", "Admin", 1,
                    kSubjectB + "  egress:\n  - {action: Deny, to: " + kToA +
                        ", protocols: [{destinationNamedPort: http}]}\n" + "") +
                cnp("q", "Admin", 2,
                    kSubjectA + "  ingress:\n  - {action: Deny, from: " + kFromB +
                        ", protocols: [{destinationNamedPort: dns}]}\n"));
  CHECK_FALSE(c.reach("b/client", "a/web", 8080));
  CHECK(c.reach("b/client", "a/web", 9000));
  CHECK_FALSE(c.reach("b/client", "a/db", 9000));
  CHECK_FALSE(c.reach("b/client", "a/web", 53, Protocol::kUDP));  // ingress, on web's own UDP port
  CHECK(c.reach("b/client", "a/web", 53, Protocol::kTCP));
}

TEST_CASE("networks match pod addresses too, nodes match node addresses", "[semantics][cnp]") {
  SECTION("0.0.0.0/0 denies pod traffic") {
    TestCluster c(base() + cnp("p", "Admin", 1,
                               kSubjectB + "  egress:\n  - {action: Deny, to: [{networks: [0.0.0.0/0]}]}\n"));
    CHECK_FALSE(c.reach("b/client", "a/web", 80));
    CHECK_FALSE(c.reach("b/client", "8.8.8.8", 53));
  }
  SECTION("a narrower network") {
    TestCluster c(base() +
                  cnp("p", "Admin", 1,
                      kSubjectB + "  egress:\n  - {action: Deny, to: [{networks: [10.244.0.2/32]}]}\n"));
    CHECK(c.reach("b/client", "a/web", 80));
    CHECK_FALSE(c.reach("b/client", "a/db", 80));
  }
  SECTION("nodes") {
    TestCluster c(
        base() +
        cnp("p", "Admin", 1,
            kSubjectB + "  egress:\n  - {action: Deny, to: [{nodes: {matchLabels: {role: worker}}}]}\n"));
    CHECK_FALSE(c.reach("b/client", "192.168.1.10", 10250));
    CHECK_FALSE(c.reach("b/client", "203.0.113.10", 10250));  // every address of status.addresses
    CHECK(c.reach("b/client", "192.168.1.11", 10250));
    CHECK(c.reach("b/client", "a/web", 80));
  }
}

TEST_CASE("a CNP isolates nothing by itself, and a pod reaching its own address is exempt",
          "[semantics][cnp]") {
  TestCluster c(base() + cnp("p", "Admin", 1,
                             kSubjectA + "  ingress:\n  - {action: Deny, from: [{namespaces: {}}]}\n"));
  CHECK(c.reach("a/web", "a/web", 80));
  CHECK_FALSE(c.reach("a/db", "a/web", 80));
  CHECK(c.reach("a/web", "b/client", 80));  // no egress rules: egress untouched
  CHECK(c.reach("8.8.8.8", "a/web", 80));   // only pods match a namespaces peer
}

TEST_CASE("a peer this version cannot read fails closed, and domainNames are read and match nothing",
          "[semantics][cnp]") {
  SECTION("Accept with an unknown peer matches nothing") {
    TestCluster c(
        base() + netpol("a", "deny", "  podSelector: {}\n") +
        cnp("p", "Admin", 1, kSubjectA + "  ingress:\n  - {action: Accept, from: [{futurePeer: {}}]}\n"));
    CHECK_FALSE(c.reach("b/client", "a/web", 80));
    CHECK(c.errors().find("warning: ClusterNetworkPolicy p: spec.ingress[0].from[0]: sets no peer field") !=
          std::string::npos);
  }
  SECTION("Deny or Pass with an unknown peer denies everything") {
    TestCluster c(base() + cnp("p", "Admin", 1,
                               kSubjectA + "  ingress:\n  - {action: Pass, from: [{futurePeer: {}}]}\n"));
    CHECK_FALSE(c.reach("b/client", "a/web", 80));
    CHECK_FALSE(c.reach("a/db", "a/web", 80, Protocol::kUDP));
    const auto& side = ingressOf(c, "a/db", "a/web", 80);
    REQUIRE(side.admin);
    CHECK(side.admin->action == Action::kDeny);
  }
  SECTION("domainNames: a warning, and the Accept matches nothing") {
    TestCluster c(base() +
                  cnp("p", "Admin", 1,
                      kSubjectA + "  egress:\n  - {action: Accept, to: [{domainNames: ['*.example.com']}]}\n"
                                  "  - {action: Deny, to: [{networks: [0.0.0.0/0]}]}\n"));
    CHECK_FALSE(c.reach("a/web", "93.184.216.34", 443));
    CHECK(c.errors().find(
              "warning: ClusterNetworkPolicy p: spec.egress[0].to[0]: domainNames are not enforced") !=
          std::string::npos);
  }
}

TEST_CASE("AdminNetworkPolicy and BaselineAdminNetworkPolicy read as the Admin and Baseline tiers",
          "[semantics][cnp]") {
  std::string anp = R"(---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: old-admin}
spec:
  priority: 5
  subject: {namespaces: {matchLabels: {team: blue}}}
  ingress:
  - name: allow-80
    action: Allow
    from: [{pods: {namespaceSelector: {matchLabels: {team: red}}, podSelector: {matchLabels: {app: client}}}}]
    ports: [{portNumber: {protocol: TCP, port: 80}}]
)";
  std::string banp = R"(---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress:
  - {name: deny-all, action: Deny, from: [{namespaces: {}}]}
)";
  TestCluster c(base() + anp + banp +
                cnp("base-accept", "Baseline", 1000,
                    kSubjectA + "  ingress:\n  - {action: Accept, from: [{namespaces: {}}], protocols: "
                                "[{tcp: {destinationPort: {number: 81}}}]}\n"));
  CHECK(c.reach("b/client", "a/web", 80));        // the ANP's Allow
  CHECK(c.reach("b/client", "a/web", 81));        // a Baseline CNP, before the BANP
  CHECK_FALSE(c.reach("b/client", "a/web", 82));  // the BANP
  CHECK_FALSE(c.reach("a/web", "b/client", 82));
  const auto& order = c.compiled->clusterPolicies();
  REQUIRE(order.size() == 3);
  CHECK(order[0].policy->key() == "anp/old-admin");
  CHECK(order[1].policy->key() == "cnp/base-accept");
  CHECK(order[2].policy->key() == "banp/default");
}

TEST_CASE("the matrix agrees with can-reach on every pair with cluster policies of both tiers",
          "[matrix][cnp]") {
  std::string extra =
      ns("c", "{team: green}") + pod("c", "x", "{app: x}", "[{ip: 10.244.2.1}]") +
      pod("c", "y", "{app: y}", "[{ip: 10.244.2.2}]", "", "[{name: http, containerPort: 80}]");
  TestCluster c(base() + extra +
                netpol("c", "only-x",
                       "  podSelector: {matchLabels: {app: y}}\n  ingress: [{from: [{podSelector: "
                       "{matchLabels: {app: x}}}]}]\n") +
                cnp("a1", "Admin", 1,
                    "  subject: {pods: {namespaceSelector: {}, podSelector: {matchExpressions: [{key: app, "
                    "operator: In, values: [web, y]}]}}}\n"
                    "  ingress:\n  - {action: Pass, from: [{namespaces: {matchLabels: {team: green}}}]}\n"
                    "  - {action: Deny, from: [{namespaces: {matchLabels: {team: red}}}], protocols: [{tcp: "
                    "{destinationPort: {number: 80}}}]}\n"
                    "  - {action: Pass, from: [{futurePeer: {}}], protocols: [{tcp: {destinationPort: "
                    "{number: 9000}}}]}\n"
                    "  egress:\n  - {action: Accept, to: [{pods: {namespaceSelector: {}, podSelector: "
                    "{matchLabels: {app: db}}}}]}\n") +
                cnp("b1", "Baseline", 3,
                    "  subject: {namespaces: {}}\n"
                    "  ingress:\n  - {action: Deny, from: [{namespaces: {matchLabels: {team: green}}}], "
                    "protocols: [{destinationNamedPort: http}]}\n"
                    "  egress:\n  - {action: Deny, to: [{namespaces: {matchLabels: {team: blue}}}], "
                    "protocols: [{tcp: {destinationPort: {range: {start: 79, end: 81}}}}]}\n"));
  for (uint16_t port : {80, 81, 8080, 9000}) {
    BitMatrix m = reachability(*c.compiled, Protocol::kTCP, port);
    for (PodId i = 0; i < c.compiled->pods().size(); ++i)
      for (PodId j = 0; j < c.compiled->pods().size(); ++j) {
        bool expected =
            anyAllowed(canReach(*c.compiled, {Endpoint::ofPod(i), Endpoint::ofPod(j), Protocol::kTCP, port}));
        INFO(c.compiled->pod(i).key() << " -> " << c.compiled->pod(j).key() << " port " << port);
        CHECK(m.get(i, j) == expected);
      }
  }
}

TEST_CASE("cluster policies are validated as their CRDs validate them, at file:line:column",
          "[validation][cnp]") {
  auto firstError = [](const std::string& yaml) {
    TestCluster c(yaml, ExpectErrors{});
    for (const auto& d : c.diagnostics)
      if (d.severity == Severity::kError) return d.toString();
    return std::string("no error");
  };
  const std::string head =
      "apiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {name: "
      "p}\nspec:\n";
  CHECK(firstError(head + "  tier: Middle\n  priority: 1\n  subject: {namespaces: {}}\n") ==
        "test.yaml:5:9: ClusterNetworkPolicy p: spec.tier: unsupported value \"Middle\" (must be Admin or "
        "Baseline)");
  CHECK(firstError(head + "  tier: Admin\n  priority: 1001\n  subject: {namespaces: {}}\n") ==
        "test.yaml:6:13: ClusterNetworkPolicy p: spec.priority: must be between 0 and 1000, not 1001");
  CHECK(firstError(head + "  tier: Admin\n  priority: 1\n") ==
        "test.yaml:5:3: ClusterNetworkPolicy p: spec.subject: required");
  CHECK(firstError(head +
                   "  tier: Admin\n  priority: 1\n  subject: {namespaces: {}, pods: {podSelector: {}}}\n") ==
        "test.yaml:7:12: ClusterNetworkPolicy p: spec.subject: must set exactly one of namespaces, pods");
  CHECK(firstError(head + "  tier: Admin\n  priority: 1\n  subject: {pods: {namespaceSelector: {}}}\n") ==
        "test.yaml:7:19: ClusterNetworkPolicy p: spec.subject.pods.podSelector: required");
  CHECK(firstError(head + "  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n  ingress:\n  - "
                          "{action: Allow, from: [{namespaces: {}}]}\n") ==
        "test.yaml:9:14: ClusterNetworkPolicy p: spec.ingress[0].action: unsupported value \"Allow\" (must "
        "be Accept, Deny or Pass)");
  CHECK(firstError(head + "  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n  ingress:\n  - "
                          "{action: Deny, from: []}\n") ==
        "test.yaml:9:26: ClusterNetworkPolicy p: spec.ingress[0].from: must have at least 1 item");
  CHECK(firstError(head + "  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n  ingress:\n  - "
                          "{action: Deny, from: [{namespaces: {}, pods: {podSelector: {}}}]}\n") ==
        "test.yaml:9:27: ClusterNetworkPolicy p: spec.ingress[0].from[0]: must set exactly one of "
        "namespaces, pods");
  CHECK(firstError(
            head +
            "  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n  egress:\n  - {action: Deny, to: "
            "[{namespaces: {}}], protocols: [{tcp: {destinationPort: {range: {start: 90, end: 80}}}}]}\n") ==
        "test.yaml:9:88: ClusterNetworkPolicy p: spec.egress[0].protocols[0].tcp.destinationPort.range: "
        "Start port must be less than End port");
  CHECK(firstError(head +
                   "  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n  egress:\n  - {action: Deny, "
                   "to: [{networks: [10.0.0.0/8]}], protocols: [{destinationNamedPort: http}]}\n") ==
        "test.yaml:9:5: ClusterNetworkPolicy p: spec.egress[0]: networks/nodes/domainNames peer cannot be "
        "set with namedPorts since there are no namedPorts for networks/nodes/domainNames");
  CHECK(
      firstError(head + "  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n  egress:\n  - {action: "
                        "Accept, to: [{domainNames: ['*bad*.com']}]}\n") ==
      "test.yaml:9:42: ClusterNetworkPolicy p: spec.egress[0].to[0].domainNames[0]: invalid domain name "
      "\"*bad*.com\": must match "
      "^(\\*\\.)?([a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\\.)+[a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\\.?$");
  CHECK(firstError(head + "  tier: Admin\n  priority: 1\n  subject: {namespaces: {}}\n  egress:\n  - "
                          "{action: Deny, to: [{networks: [10.0.0.0/33]}]}\n")
            .starts_with("test.yaml:9:37: ClusterNetworkPolicy p: spec.egress[0].to[0].networks[0]: Invalid "
                         "CIDR format provided"));
  CHECK(
      firstError("apiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: "
                 "{name: other}\nspec:\n  subject: {namespaces: {}}\n")
          .starts_with("test.yaml:3:18: BaselineAdminNetworkPolicy other: metadata.name: Only one baseline "
                       "admin network policy"));
  CHECK(
      firstError("apiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {name: "
                 "a}\nspec:\n  priority: 1\n  subject: {namespaces: {}}\n  egress:\n  - {action: Pass, to: "
                 "[{namespaces: {}}], ports: [{portRange: {protocol: UDP, start: 10, end: 10}}]}\n") ==
      "test.yaml:8:64: AdminNetworkPolicy a: spec.egress[0].ports[0].portRange: Start port must be less than "
      "End port");
}

TEST_CASE("explain shows a cluster policy's place, subjects and resolved peers, and lint finds dead rules",
          "[explain][cnp]") {
  TestCluster c(
      base() +
      cnp("z", "Admin", 7,
          kSubjectA +
              "  ingress:\n  - {name: all, action: Deny, from: [{namespaces: {}}]}\n"
              "  - {name: late, action: Accept, from: " +
              kFromB +
              ", protocols: [{tcp: {destinationPort: {number: 80}}}]}\n"
              "  egress:\n  - {action: Accept, to: [{nodes: {matchLabels: {role: worker}}}]}\n") +
      cnp("y", "Admin", 7, kSubjectA + "  ingress:\n  - {action: Accept, from: " + kFromB + "}\n") +
      cnp("nobody", "Baseline", 1,
          "  subject: {namespaces: {matchLabels: {team: none}}}\n  ingress:\n  - {action: Pass, from: "
          "[{namespaces: {matchLabels: {team: none}}}]}\n"));
  auto id = c.compiled->findClusterPolicy("cnp/z");
  REQUIRE(id);
  std::string text = explainClusterPolicy(*c.compiled, *id);
  CHECK(text.find("tier Admin, priority 7: evaluated 2nd of 2 in its tier") != std::string::npos);
  CHECK(text.find("selects 2 pod(s): a/db, a/web") != std::string::npos);
  CHECK(text.find("spec.ingress[1] \"late\": Accept") != std::string::npos);
  CHECK(text.find("to[0] nodes {role=worker} -> addresses [192.168.1.10, 203.0.113.10]") !=
        std::string::npos);
  std::string warnings;
  for (const auto& d : lint(*c.compiled))
    warnings += d.toString() + "\n";
  INFO(warnings);
  CHECK(
      warnings.find("ClusterNetworkPolicy z: spec.ingress[1]: shadowed by cnp/y spec.ingress[0] (Accept)") !=
      std::string::npos);
  CHECK(
      warnings.find("ClusterNetworkPolicy y: spec.priority: same priority (7) as cnp/z in the Admin tier") !=
      std::string::npos);
  CHECK(warnings.find("ClusterNetworkPolicy nobody: spec.subject: selects no pod") != std::string::npos);
  CHECK(warnings.find("ClusterNetworkPolicy nobody: spec.ingress[0]: matches no peer") != std::string::npos);
  CHECK(warnings.find("nobody: spec.ingress[0]: shadowed") == std::string::npos);
}

TEST_CASE("a what-if that adds a cluster policy shows the cells it flips", "[matrix][cnp]") {
  TestCluster before(base());
  TestCluster after(base() + cnp("guard", "Admin", 1,
                                 kSubjectA + "  ingress:\n  - {action: Deny, from: " + kFromB + "}\n"));
  auto diff = reachabilityDiff(*before.compiled, *after.compiled, Protocol::kTCP, 80);
  REQUIRE(diff.flips.size() == 2);
  CHECK(diff.flips[0].from == "b/client");
  CHECK(diff.flips[0].to == "a/db");
  CHECK_FALSE(diff.flips[0].allowedAfter);
  CHECK(diff.flips[1].to == "a/web");
}

// The model reports a changed cluster policy by its key, not by its subject's pods (a policy over every
// namespace would name every pod), and a pod's cluster policies found from its earlier list and the changed
// keys are exactly those found from scratch: what the renderer relies on to touch only the classes a change
// touches.
TEST_CASE("a changed cluster policy is reported by key, and a pod's policies follow from its earlier list",
          "[semantics][cnp]") {
  ClusterState state = bench::generateCluster(
      {.namespaces = 8, .pods = 120, .policies = 10, .seed = 3, .clusterPolicies = 30});
  Model model = Model::of(state);
  (void)model.takeDirty();
  std::mt19937_64 rng(3);
  std::vector<ClusterNetworkPolicy> all = state.clusterPolicies();
  REQUIRE(all.size() == 30);
  size_t moved = 0;
  for (int step = 0; step < 60; ++step) {
    std::map<std::string, std::vector<std::string>> before;
    for (const auto& [name, pod] : model.pods())
      for (const auto* p : model.clusterPoliciesOf(*pod))
        before[name.key()].push_back(p->key());
    // One policy removed, re-added, or its priority or subject changed.
    ClusterNetworkPolicy p = all[std::uniform_int_distribution<size_t>(0, all.size() - 1)(rng)];
    int what = static_cast<int>(step % 3);
    INFO("step " << step << ": " << p.key() << " change " << what);
    if (what == 0) {
      model.setClusterPolicy(p.key(), nullptr);
    } else {
      if (what == 1) p.priority = static_cast<int32_t>(std::uniform_int_distribution<int>(0, 1000)(rng));
      if (what == 2) p.subject = all[std::uniform_int_distribution<size_t>(0, all.size() - 1)(rng)].subject;
      model.setClusterPolicy(p.key(), &p);
    }
    Dirty dirty = model.takeDirty();
    CHECK(dirty.clusterPolicyKeys == std::set<std::string>{p.key()});
    CHECK(dirty.pods.empty());
    for (const auto& [name, pod] : model.pods()) {
      auto fresh = model.clusterPoliciesOf(*pod);
      std::vector<const ClusterNetworkPolicy*> kept, changed;
      for (const auto& key : before[name.key()])
        if (!dirty.clusterPolicyKeys.count(key)) kept.push_back(model.findClusterPolicy(key));
      for (const auto& key : dirty.clusterPolicyKeys)
        if (const auto* now = model.findClusterPolicy(key)) changed.push_back(now);
      auto patched = model.clusterPoliciesOf(*pod, kept, changed);
      REQUIRE(patched == fresh);
      moved += fresh.size() != before[name.key()].size();
    }
    if (what == 0) {  // back, for the next steps
      model.setClusterPolicy(p.key(), &p);
      (void)model.takeDirty();
    }
  }
  CHECK(moved > 0);
}
