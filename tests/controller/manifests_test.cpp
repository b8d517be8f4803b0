// The manifests directory as the controller keeps it: merged object by object as files change, the last file
// in path order deciding, broken files keeping their last valid objects; and the reconciler's incremental
// table equal to a full render of the same objects after every edit.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "nftpol/controller/manifests.h"
#include "nftpol/controller/reconcile.h"
#include "nftpol/render/render.h"

using namespace nftpol;
using namespace nftpol::controller;
namespace fs = std::filesystem;

namespace {

struct Dir {
  fs::path path = fs::temp_directory_path() / ("nftpol-manifests-" + std::to_string(::getpid()) + "-" +
                                               std::to_string(reinterpret_cast<uintptr_t>(this)));
  Dir() { fs::create_directories(path); }
  ~Dir() { fs::remove_all(path); }
  // A distinct size each time, so a rewrite within the same mtime tick is still seen.
  void write(const std::string& name, const std::string& text) {
    static int version = 0;
    std::ofstream(path / name, std::ios::trunc)
        << text << std::string(static_cast<size_t>(++version % 7), '\n');
  }
};

std::string pod(const std::string& name, const std::string& app, const std::string& ip,
                const std::string& node = "node-1") {
  return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", namespace: x, labels: {app: " + app +
         "}}\nspec: {nodeName: " + node + "}\nstatus: {phase: Running, podIP: " + ip + "}\n";
}
std::string netpol(const std::string& name, const std::string& from) {
  return "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " + name +
         ", namespace: x}\nspec:\n  podSelector: {matchLabels: {app: db}}\n  ingress:\n  - from: "
         "[{podSelector: {matchLabels: {app: " +
         from + "}}}]\n";
}
bool contains(const std::vector<policy::ObjectRef>& refs, const std::string& kind, const std::string& key) {
  return std::find(refs.begin(), refs.end(), policy::ObjectRef{kind, key}) != refs.end();
}

}  // namespace

TEST_CASE("the last file in path order decides an object, and removing it brings the earlier one back",
          "[manifests]") {
  Dir dir;
  dir.write("a.yaml", pod("p", "web", "10.0.0.1"));
  dir.write("b.yaml", pod("p", "db", "10.0.0.1"));
  ManifestSet m(dir.path.string());
  auto first = m.refresh();
  CHECK(contains(first.objects, "Pod", "x/p"));
  CHECK(m.state().findPod("x", "p")->labels.toString() == "app=db");

  dir.write("a.yaml", pod("p", "api", "10.0.0.1"));  // shadowed by b.yaml
  m.refresh();
  CHECK(m.state().findPod("x", "p")->labels.toString() == "app=db");

  fs::remove(dir.path / "b.yaml");
  auto gone = m.refresh();
  CHECK(gone.changed);
  CHECK(contains(gone.objects, "Pod", "x/p"));
  CHECK(m.state().findPod("x", "p")->labels.toString() == "app=api");

  dir.write("a.yaml", pod("q", "web", "10.0.0.2"));  // p leaves the file, q arrives
  auto moved = m.refresh();
  CHECK(contains(moved.objects, "Pod", "x/p"));
  CHECK(contains(moved.objects, "Pod", "x/q"));
  CHECK(m.state().findPod("x", "p") == nullptr);
  CHECK(m.state().findPod("x", "q") != nullptr);
}

TEST_CASE("a broken file keeps its last valid objects, and only merged() implies namespaces", "[manifests]") {
  Dir dir;
  dir.write("a.yaml", pod("p", "web", "10.0.0.1"));
  ManifestSet m(dir.path.string());
  m.refresh();
  dir.write("a.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p\n");
  auto broken = m.refresh();
  CHECK(broken.filesWithErrors == 1);
  CHECK_FALSE(broken.changed);
  CHECK(broken.objects.empty());
  CHECK(m.brokenFiles() == 1);
  CHECK(m.state().findPod("x", "p")->labels.toString() == "app=web");
  CHECK(m.state().findNamespace("x") == nullptr);
  CHECK(m.merged().findNamespace("x") != nullptr);
}

TEST_CASE("the reconciler's table equals a full render after every edit", "[manifests][reconcile]") {
  Dir dir;
  nft::FakeBackend kernel;
  ManifestSet m(dir.path.string());
  Reconciler reconciler("node-1", kernel);
  bool loaded = false;
  auto sync = [&] {
    auto change = m.refresh();
    if (!loaded) {
      reconciler.load(m.state());
      loaded = true;
    } else {
      reconciler.update(m.state(), change.objects);
    }
    REQUIRE(reconciler.apply());
    auto full = m.merged();
    CHECK(reconciler.table() == render::render(policy::Model::of(full), "node-1"));
  };
  dir.write("pods.yaml", pod("db", "db", "10.0.0.1") + "---\n" + pod("web", "web", "10.0.0.2", "node-2"));
  sync();
  dir.write("policy.yaml", netpol("allow-web", "web"));
  sync();
  // The base chain, forward-ingress and forward-allowed, the two pass chains, db's ingress chain.
  CHECK(reconciler.table().chains.size() == 6);
  dir.write("override.yaml", netpol("allow-web", "api"));  // a later file rewrites the policy
  sync();
  dir.write("pods.yaml", pod("db", "db", "10.0.0.1") + "---\n" + pod("web", "api", "10.0.0.3", "node-2"));
  sync();
  dir.write("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: x, labels: {team: a}}\n");
  sync();
  fs::remove(dir.path / "override.yaml");
  sync();
  fs::remove(dir.path / "policy.yaml");
  sync();
  CHECK(reconciler.table().chains.size() == 5);
}

TEST_CASE(
    "a link to nothing is an error like a parse error: its file keeps its objects, and nothing else goes",
    "[manifests]") {
  Dir dir;
  dir.write("a.yaml", netpol("from-web", "web"));
  dir.write("b.yaml", pod("b", "db", "10.0.0.2"));
  dir.write("c.yaml", pod("c", "web", "10.0.0.3"));
  ManifestSet m(dir.path.string());
  REQUIRE(m.refresh().filesWithErrors == 0);
  auto generation = m.generation();

  fs::rename(dir.path / "b.yaml", dir.path / "b.real");
  fs::create_symlink(dir.path / "b.real", dir.path / "b.yaml");
  fs::create_symlink(dir.path / "nowhere", dir.path / "0.yaml");
  fs::remove(dir.path / "b.real");  // b.yaml now links to nothing
  auto broken = m.refresh();
  CHECK(broken.filesWithErrors == 2);
  std::vector<std::string> errors;
  for (const auto& d : broken.diagnostics)
    errors.push_back(d.toString());
  CHECK(errors == std::vector<std::string>{
                      (dir.path / "0.yaml").string() + ": cannot read: No such file or directory",
                      (dir.path / "b.yaml").string() + ": cannot read: No such file or directory"});
  CHECK(broken.objects.empty());
  CHECK(m.generation() == generation);
  CHECK(m.brokenFiles() == 2);
  CHECK(m.state().findPod("x", "b"));
  CHECK(m.state().findPod("x", "c"));
  CHECK(m.state().policies().size() == 1);

  dir.write("b.real", pod("b", "api", "10.0.0.2"));  // the link leads somewhere again
  fs::remove(dir.path / "0.yaml");
  auto mended = m.refresh();
  CHECK(mended.filesWithErrors == 0);
  CHECK(m.brokenFiles() == 0);
  CHECK(m.state().findPod("x", "b")->labels.toString() == "app=api");
}
