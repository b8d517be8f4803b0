// The loader reads what kubectl prints: single objects, streams, List and typed lists, YAML and JSON.
#include <filesystem>
#include <fstream>

#include "generator.h"
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
      "apiVersion: v1\nkind: Endpoints\nmetadata: {name: s, namespace: a}\n---\napiVersion: apps/v1\n"
      "kind: Deployment\nmetadata: {name: d}\n");
  REQUIRE(c.state->others().size() == 1);
  CHECK(c.state->others()[0].kind == "Endpoints");
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

TEST_CASE("a link to nothing in a directory is an error that names it, and the walk goes on", "[loader]") {
  auto dir = std::filesystem::temp_directory_path() / ("nftpol-dangling-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "z");
  std::filesystem::create_symlink(dir / "nowhere", dir / "a.yaml");
  std::ofstream(dir / "b.yaml") << ns("b");
  std::ofstream(dir / "z" / "c.yaml") << ns("c");
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadPaths({dir.string()}, state, diagnostics);
  std::filesystem::remove_all(dir);
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].toString() == (dir / "a.yaml").string() + ": cannot read: No such file or directory");
  CHECK(state.namespaces().size() == 2);
}

TEST_CASE("a missing path is an error that names it", "[loader]") {
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadPaths({"/nonexistent/nftpol.yaml"}, state, diagnostics);
  REQUIRE(diagnostics.size() == 1);
  CHECK(diagnostics[0].toString() == "/nonexistent/nftpol.yaml: cannot read: No such file or directory");
}

TEST_CASE("YAML as go-yaml reads it: anchors, nulls, block and tagged scalars", "[loader]") {
  TestCluster c(
      "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Pod\n  metadata:\n    name: p\n"
      "    namespace: ~\n    labels: &l\n      app: web\n      note: |-\n        text\n"
      "  status: {podIP: 10.244.0.1}\n"
      "- {apiVersion: v1, kind: Pod, metadata: {name: q, namespace: null, labels: *l}, status: {podIP: "
      "10.244.0.2}}\n---\n"
      "apiVersion: v1\nkind: Namespace\nmetadata: {name: n, labels: {version: !!str 1, empty: }}\n");
  INFO(c.errors());
  CHECK_FALSE(hasErrors(c.diagnostics));
  const Pod* p = c.state->findPod("default", "p");
  const Pod* q = c.state->findPod("default", "q");
  REQUIRE(p);
  REQUIRE(q);
  CHECK(p->labels.toString() == "app=web,note=text");
  CHECK(q->labels.toString() == p->labels.toString());
  CHECK(c.state->findNamespace("n")->labels.toString() == "empty=,kubernetes.io/metadata.name=n,version=1");
}

TEST_CASE("plain scalars end where YAML ends them: comments, trailing blanks, CRLF, flow, folded lines",
          "[loader]") {
  TestCluster c(
      "apiVersion: v1\r\nkind: Namespace\r\nmetadata:\r\n  name: n   # the name\r\n  labels:\r\n"
      "    a: b \t\r\n    c: d-e\r\n    f: {g: h , i: j}\r\n"
      "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: o, labels: {p: q\n    r, s: t#u, v: w:x}}\n",
      ExpectErrors{});
  REQUIRE(c.state->findNamespace("n") == nullptr);  // f is not a string
  auto errors = c.errors();
  CHECK(errors.find("test.yaml:8:8: Namespace n: metadata.labels[f]: must be a string") != std::string::npos);
  CHECK(errors.find("labels[a]") == std::string::npos);
  CHECK(errors.find("labels[c]") == std::string::npos);
  // The errors quote each value as it was read.
  CHECK(errors.find("labels[p]: invalid label value \"q r\"") != std::string::npos);
  CHECK(errors.find("labels[s]: invalid label value \"t#u\"") != std::string::npos);
  CHECK(errors.find("labels[v]: invalid label value \"w:x\"") != std::string::npos);

  TestCluster ok(
      "apiVersion: v1\r\nkind: Namespace\r\nmetadata:\r\n  name: n   # the name\r\n"
      "  labels: {a: b \t, c: d-e }  \r\n");
  INFO(ok.errors());
  REQUIRE(ok.state->findNamespace("n"));
  CHECK(ok.state->findNamespace("n")->labels.toString() == "a=b,c=d-e,kubernetes.io/metadata.name=n");
}

TEST_CASE("YAML errors name the place: syntax, unknown alias, quoted values", "[loader]") {
  TestCluster c(
      "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: *nowhere}\n---\n"
      "apiVersion: v1\nkind: Namespace\nmetadata: {name: n, labels: {a: \"b c\"}}\n---\n"
      "apiVersion: v1\nkind: Pod\nmetadata: {name: \"x\n",
      ExpectErrors{});
  auto lines = c.errors();
  CHECK(lines.find("test.yaml:3:29: invalid YAML: unknown anchor \"nowhere\"") != std::string::npos);
  CHECK(lines.find("test.yaml:7:33: Namespace n: metadata.labels[a]: invalid label value \"b c\"") !=
        std::string::npos);
  CHECK(lines.find("test.yaml:11:") != std::string::npos);
}

TEST_CASE("a stream goes on after a broken document, which is named once", "[loader]") {
  TestCluster c(
      "# before the first marker\n"
      "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n"
      "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: b, labels: {x: y}\n"
      "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: c}\n"
      "...\n%YAML 1.1\n"
      "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: d}\n"
      "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: e, labels: *nowhere}\n"
      "--- {apiVersion: v1, kind: Namespace, metadata: {name: f}}\n",
      ExpectErrors{});
  for (const char* name : {"a", "c", "d", "f"}) {
    INFO(name);
    CHECK(c.state->findNamespace(name));
  }
  CHECK_FALSE(c.state->findNamespace("b"));
  CHECK_FALSE(c.state->findNamespace("e"));
  REQUIRE(c.diagnostics.size() == 2);
  CHECK(c.diagnostics[0].toString().starts_with("test.yaml:10:1: invalid YAML: "));
  CHECK(c.diagnostics[1].toString() == "test.yaml:23:29: invalid YAML: unknown anchor \"nowhere\"");
}

TEST_CASE("text that is not UTF-8 is refused where it stops being UTF-8", "[loader]") {
  // The directive line once made libfyaml loop forever (found by the fuzzer).
  TestCluster c(
      "apiVersion: v1\nkind: Namespace\nmetadata: {name: \"caf\xc3\xa9\"}\n---\n%--nlgp-o\x95\x93:\v\n"
      "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n, labels: {a: \"\xed\xa0\x80\"}}\n",
      ExpectErrors{});
  auto lines = c.errors();
  CHECK(lines.find("test.yaml:5:10: invalid YAML: invalid UTF-8 (byte 0x95)") != std::string::npos);
  CHECK(lines.find("test.yaml:9:34: invalid YAML: invalid UTF-8 (byte 0xed)") != std::string::npos);
  CHECK(lines.find("Namespace caf") != std::string::npos);  // valid UTF-8, an invalid name
}

TEST_CASE("a large stream loads on every core exactly as document by document", "[loader]") {
  std::string yaml = bench::generateYaml({.namespaces = 40, .pods = 3000, .policies = 400, .seed = 7});
  // A later document replaces an earlier pod, across the runs the workers take; one document is broken.
  yaml +=
      "---\napiVersion: v1\nkind: Pod\nmetadata: {name: pod-0, namespace: ns-0, labels: {moved: yes-it-is}}\n"
      "status: {podIP: 10.1.2.3}\n---\nkind: Pod\nmetadata: {name: [\n";
  size_t middle = yaml.find("\n---\n", yaml.size() / 2);
  yaml.insert(middle, "\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: Bad}\n");
  REQUIRE(yaml.size() > 512 * 1024);

  ClusterState parallel;
  std::vector<Diagnostic> parallelDiagnostics;
  loadText(yaml, "big.yaml", parallel, parallelDiagnostics);

  // The same documents one at a time, each far too small to be split, and moved down to its lines in the
  // stream (moving the locations, not padding the text: padding made the test quadratic).
  ClusterState sequential;
  std::vector<Diagnostic> sequentialDiagnostics;
  size_t from = 0;
  int lineOffset = 0;
  while (from < yaml.size()) {
    size_t next = yaml.find("\n---\n", from);
    std::string doc = yaml.substr(from, next == std::string::npos ? std::string::npos : next + 1 - from);
    ClusterState one;
    std::vector<Diagnostic> found;
    loadText(doc, "big.yaml", one, found);
    for (Namespace n : one.namespaces()) {
      n.where.line += lineOffset;
      sequential.upsert(std::move(n));
    }
    for (Pod p : one.pods()) {
      p.where.line += lineOffset;
      sequential.upsert(std::move(p));
    }
    for (NetworkPolicy p : one.policies()) {
      p.where.line += lineOffset;
      sequential.upsert(std::move(p));
    }
    for (Diagnostic& d : found)
      if (d.where.line > 0) d.where.line += lineOffset;
    sequentialDiagnostics.insert(sequentialDiagnostics.end(), found.begin(), found.end());
    lineOffset += static_cast<int>(std::count(doc.begin(), doc.end(), '\n'));
    if (next == std::string::npos) break;
    from = next + 1;
  }

  REQUIRE(parallel.pods().size() == sequential.pods().size());
  REQUIRE(parallel.policies().size() == sequential.policies().size());
  REQUIRE(parallel.namespaces().size() == sequential.namespaces().size());
  for (size_t i = 0; i < parallel.pods().size(); ++i) {
    const Pod& a = parallel.pods()[i];
    const Pod& b = sequential.pods()[i];
    CHECK((a.key() == b.key() && a.labels.items() == b.labels.items() && a.ips == b.ips &&
           a.where.line == b.where.line));
  }
  for (size_t i = 0; i < parallel.policies().size(); ++i)
    CHECK(parallel.policies()[i].where.line == sequential.policies()[i].where.line);
  CHECK(parallel.findPod("ns-0", "pod-0")->labels.toString() == "moved=yes-it-is");
  std::vector<std::string> a, b;
  for (const auto& d : parallelDiagnostics)
    a.push_back(d.toString());
  for (const auto& d : sequentialDiagnostics)
    b.push_back(d.toString());
  CHECK(a == b);
  CHECK(a.size() == 2);
}
