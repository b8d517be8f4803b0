// The loader reads what kubectl prints: single objects, streams, List and typed lists, YAML and JSON.
#include <filesystem>
#include <fstream>

#include "helpers.h"

using namespace nftpol;
using namespace nftpol::policy;
using namespace nftpol::testing;

TEST_CASE("kind: List with items, as kubectl get -o yaml prints", "[loader]") {
  TestCluster c(
      "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n"
      "- apiVersion: v1\n  kind: Pod\n  metadata: {name: p, namespace: a}\n  status: {podIP: 10.244.0.1}\n"
      "metadata: {resourceVersion: \"\"}\n");
  CHECK(c.errors().empty());
  CHECK(c.state->namespaces().size() == 1);
  CHECK(c.state->pods().size() == 1);
}

TEST_CASE("typed lists name their items' kind, as the API returns them", "[loader]") {
  TestCluster c(
      "apiVersion: v1\nkind: PodList\nitems:\n- metadata: {name: p, namespace: default}\n"
      "  status: {podIP: 10.244.0.1}\n");
  CHECK(c.state->pods().size() == 1);
}

TEST_CASE("JSON, as kubectl get -o json prints", "[loader]") {
  TestCluster c(R"({
    "apiVersion": "v1", "kind": "List",
    "items": [
      {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a", "labels": {"team": "x"}}},
      {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "a", "labels": {"app": "web"}},
       "spec": {"containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}]}]},
       "status": {"phase": "Running", "podIP": "10.244.0.1", "podIPs": [{"ip": "10.244.0.1"}, {"ip": "fd00::1"}]}},
      {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "n", "namespace": "a"},
       "spec": {"podSelector": {}, "ingress": [{"ports": [{"port": "http"}, {"port": 81, "endPort": 82}]}],
                "policyTypes": ["Ingress"]}}
    ]})");
  INFO(c.errors());
  CHECK(c.errors().empty());
  REQUIRE(c.state->pods().size() == 1);
  CHECK(c.state->pods()[0].ips.size() == 2);
  CHECK(c.state->pods()[0].namedPort("http", Protocol::kTCP) == 80);
  REQUIRE(c.state->policies().size() == 1);
  CHECK(c.state->policies()[0].ingressRules[0].ports[0].toString() == "TCP/http");
  CHECK(c.state->policies()[0].ingressRules[0].ports[1].toString() == "TCP/81-82");
  CHECK(c.reach("10.244.0.9", "a/p", 80));
  CHECK_FALSE(c.reach("10.244.0.9", "a/p", 83));
}

TEST_CASE("other kinds are kept, unknown kinds are skipped with a warning", "[loader]") {
  TestCluster c(
      "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: a}\n---\napiVersion: apps/v1\n"
      "kind: Deployment\nmetadata: {name: d}\n");
  CHECK(c.state->others().size() == 1);
  CHECK(c.state->others()[0].kind == "Service");
  REQUIRE(c.diagnostics.size() == 1);
  CHECK(c.diagnostics[0].toString() ==
        "test.yaml:5:1: warning: Deployment: kind Deployment is not used by nftpol; skipped");
}

TEST_CASE("a pod's namespace defaults to default, and a namespace without an object is implied", "[loader]") {
  TestCluster c("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nstatus: {podIP: 10.244.0.1}\n");
  REQUIRE(c.state->pods().size() == 1);
  CHECK(c.state->pods()[0].ns == "default");
  REQUIRE(c.diagnostics.size() == 1);
  CHECK(c.diagnostics[0].toString() ==
        "test.yaml:1:1: warning: Pod default/p: metadata.namespace: namespace \"default\" has no Namespace "
        "object; "
        "assuming one labelled only kubernetes.io/metadata.name=default");
  CHECK(c.state->findNamespace("default")->implied);
}

TEST_CASE("a later object of the same kind, namespace and name replaces the earlier", "[loader]") {
  TestCluster c(ns("a", "{v: '1'}") + ns("a", "{v: '2'}"));
  REQUIRE(c.state->namespaces().size() == 1);
  CHECK(*c.state->namespaces()[0].labels.find("v") == "2");
}

TEST_CASE("directories are read recursively in sorted order, only YAML and JSON files", "[loader]") {
  auto dir = std::filesystem::temp_directory_path() / ("nftpol-loader-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "sub");
  std::ofstream(dir / "b.yaml") << ns("b");
  std::ofstream(dir / "sub" / "a.json")
      << R"({"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a"}})";
  std::ofstream(dir / "notes.txt") << "not yaml: [";
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadPaths({dir.string()}, state, diagnostics);
  std::filesystem::remove_all(dir);
  CHECK(diagnostics.empty());
  REQUIRE(state.namespaces().size() == 2);
  CHECK(state.namespaces()[0].name == "b");  // b.yaml sorts before sub/a.json
}

TEST_CASE("a missing path is an error that names it", "[loader]") {
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadPaths({"/nonexistent/nftpol.yaml"}, state, diagnostics);
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].toString() == "/nonexistent/nftpol.yaml:0:0: cannot read: No such file or directory");
}
