// Validation matches the API server's, and every error says file:line:column, object, field and what is
// allowed.
#include "helpers.h"

using namespace nftpol;
using namespace nftpol::policy;
using namespace nftpol::testing;

namespace {

std::vector<std::string> errorsOf(const std::string& yaml) {
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadText(yaml, "p.yaml", state, diagnostics);
  std::vector<std::string> out;
  out.reserve(diagnostics.size());
  for (const auto& d : diagnostics)
    out.push_back(d.toString());
  return out;
}

// A policy document whose spec starts on line 6.
std::string policyDoc(const std::string& spec) {
  return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: p\n  namespace: "
         "x\nspec:\n" +
         spec;
}

struct Case {
  const char* name;
  std::string yaml;
  std::vector<std::string> errors;
};

}  // namespace

TEST_CASE("NetworkPolicy validation errors, exactly", "[validation]") {
  const std::string np = "p.yaml:";
  const std::string obj = "NetworkPolicy x/p: ";
  std::vector<Case> cases = {
      {"except outside cidr",
       policyDoc("  podSelector: {}\n  ingress:\n  - from:\n    - podSelector: {}\n    - ipBlock:\n        "
                 "cidr: 10.0.0.0/16\n"
                 "        except: [10.1.0.0/24]\n"),
       {np + "13:18: " + obj + "spec.ingress[0].from[1].ipBlock.except[0]: not within cidr 10.0.0.0/16"}},
      {"except equal to cidr",
       policyDoc("  podSelector: {}\n  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.0/16, except: "
                 "[10.0.0.0/16]}\n"),
       {np + "10:45: " + obj +
        "spec.egress[0].to[0].ipBlock.except[0]: must be strictly smaller than cidr 10.0.0.0/16"}},
      {"bad cidr",
       policyDoc("  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/33}\n"),
       {np + "10:23: " + obj +
        "spec.ingress[0].from[0].ipBlock.cidr: invalid CIDR \"10.0.0.0/33\" (must be an address and a prefix "
        "length, "
        "e.g. 10.0.0.0/16)"}},
      {"ipBlock beside a selector",
       policyDoc("  podSelector: {}\n  ingress:\n  - from:\n    - ipBlock: {cidr: 10.0.0.0/8}\n      "
                 "podSelector: {}\n"),
       {np + "10:7: " + obj + "spec.ingress[0].from[0]: may not specify both ipBlock and another peer"}},
      {"empty peer",
       policyDoc("  podSelector: {}\n  ingress:\n  - from:\n    - {}\n"),
       {np + "10:7: " + obj +
        "spec.ingress[0].from[0]: must specify a peer (podSelector, namespaceSelector or ipBlock)"}},
      {"In without values, Exists with values, unknown operator",
       policyDoc("  podSelector:\n    matchExpressions:\n    - {key: a, operator: In}\n    - {key: b, "
                 "operator: Exists, "
                 "values: [x]}\n    - {key: c, operator: Has, values: [x]}\n"),
       {np + "9:7: " + obj +
            "spec.podSelector.matchExpressions[0].values: must be specified when operator is In or NotIn",
        np + "10:42: " + obj +
            "spec.podSelector.matchExpressions[1].values: may not be specified when operator is Exists or "
            "DoesNotExist",
        np + "11:26: " + obj +
            "spec.podSelector.matchExpressions[2].operator: unsupported value \"Has\" (must be In, NotIn, "
            "Exists or "
            "DoesNotExist)"}},
      {"bad label key and value",
       policyDoc("  podSelector:\n    matchLabels: {\"-bad\": ok, good: \"bad value\"}\n"),
       {np + "8:19: " + obj +
            "spec.podSelector.matchLabels: invalid label key \"-bad\": the name part must be 1-63 characters "
            "of "
            "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric character (an optional "
            "DNS "
            "subdomain prefix and '/' may precede it)",
        np + "8:37: " + obj +
            "spec.podSelector.matchLabels[good]: invalid label value \"bad value\": must be empty or 1-63 "
            "characters of "
            "alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric character"}},
      {"port out of range, endPort rules, protocol",
       policyDoc(
           "  podSelector: {}\n  ingress:\n  - ports:\n    - port: 70000\n    - {port: 90, endPort: 80}\n"
           "    - {port: http, endPort: 90}\n    - {endPort: 90}\n    - {protocol: ICMP}\n"),
       {np + "10:13: " + obj +
            "spec.ingress[0].ports[0].port: 70000 is not a valid port number (must be between 1 and 65535)",
        np + "11:27: " + obj + "spec.ingress[0].ports[1].endPort: must be greater than or equal to port (90)",
        np + "12:29: " + obj +
            "spec.ingress[0].ports[2].endPort: may not be specified when port is a named port",
        np + "13:17: " + obj +
            "spec.ingress[0].ports[3].endPort: may not be specified without a numeric port",
        np + "14:18: " + obj +
            "spec.ingress[0].ports[4].protocol: unsupported value \"ICMP\" (must be TCP, UDP or SCTP)"}},
      {"bad port name; a quoted number is a name",
       policyDoc("  podSelector: {}\n  ingress:\n  - ports:\n    - port: \"80\"\n"),
       {np + "10:13: " + obj +
        "spec.ingress[0].ports[0].port: invalid port \"80\": must be a port number or an IANA service name "
        "(1-15 "
        "lowercase alphanumerics or '-', with at least one letter, not starting, ending or doubling '-')"}},
      {"policyTypes",
       policyDoc("  podSelector: {}\n  policyTypes: [Ingress, Sideways]\n"),
       {np + "8:26: " + obj +
        "spec.policyTypes[1]: unsupported value \"Sideways\" (must be Ingress or Egress)"}},
      {"unknown field (a typo must not widen a policy)",
       policyDoc("  podSelector: {}\n  ingress:\n  - from:\n    - namespaceselector: {}\n"),
       {np + "10:7: " + obj + "spec.ingress[0].from[0]: unknown field \"namespaceselector\"",
        np + "10:7: " + obj +
            "spec.ingress[0].from[0]: must specify a peer (podSelector, namespaceSelector or ipBlock)"}},
      {"wrong apiVersion",
       "apiVersion: extensions/v1beta1\nkind: NetworkPolicy\nmetadata: {name: p}\nspec: {}\n",
       {np + "1:13: NetworkPolicy: apiVersion: unsupported apiVersion \"extensions/v1beta1\" for "
             "NetworkPolicy (must be "
             "networking.k8s.io/v1)"}},
      {"bad names",
       "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: Bad_Name, namespace: "
       "X}\nspec: {}\n",
       {np + "3:18: NetworkPolicy X/Bad_Name: metadata.name: invalid name \"Bad_Name\" (must be at most 253 "
             "lowercase "
             "alphanumeric characters, '-' or '.', starting and ending with an alphanumeric character)",
        np + "3:39: NetworkPolicy X/Bad_Name: metadata.namespace: invalid name \"X\" (must be at most 63 "
             "lowercase "
             "alphanumeric characters or '-', starting and ending with an alphanumeric character)"}},
      {"label value that YAML reads as a number",
       "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: n\n  labels:\n    version: 1\n",
       {np + "6:14: Namespace n: metadata.labels[version]: must be a string (quote \"1\")"}},
      {"pod address",
       "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: x}\nstatus:\n  podIP: 10.0.0.300\n",
       {np + "5:10: Pod x/p: status.podIP: invalid IP address \"10.0.0.300\""}},
      {"broken YAML",
       "apiVersion: v1\nkind: Pod\nmetadata: {name: p\n",
       {np + "4:1: invalid YAML: missing comma in flow mapping"}},
      {"not an object",
       "- a\n- b\n",
       {np + "1:1: expected a Kubernetes object (a map with apiVersion, kind and metadata)"}},
      {"no kind", "apiVersion: v1\nmetadata: {name: x}\n", {np + "1:1: kind: required"}},
  };
  for (const auto& c : cases) {
    SECTION(c.name) {
      CHECK(errorsOf(c.yaml) == c.errors);
    }
  }
}

TEST_CASE("an object with an error is left out whole, and the others still load", "[validation]") {
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadText(policyDoc("  podSelector: {}\n  ingress: [{ports: [{port: 0}]}]\n") + "---\n" + ns("ok") +
               "---\napiVersion: v1\nkind: Pod\nmetadata: {name: p\n---\n" + ns("also-ok"),
           "p.yaml", state, diagnostics);
  CHECK(state.policies().empty());
  CHECK(state.namespaces().size() == 2);
  REQUIRE(diagnostics.size() == 2);
  CHECK(diagnostics[1].toString() == "p.yaml:20:1: invalid YAML: missing comma in flow mapping");
}
