// deploy/ as the cluster will read it: every manifest through the project's YAML loader, the RBAC rules
// against what the Kubernetes source watches, and the DaemonSet's wiring (the downward API, probes on the
// port the controller listens on, the CNI template the init container renders).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "nftpol/controller/cni_install.h"
#include "nftpol/controller/watched_resources.h"
#include "nftpol/policy/loader.h"
#include "yaml_tree.h"

using namespace nftpol;
using policy::yaml::Node;
namespace fs = std::filesystem;

namespace {

const fs::path kDeploy = fs::path(NFTPOL_SOURCE_DIR) / "deploy";

// Every document of deploy/*.yaml, kept with the text it points into.
struct Manifests {
  std::vector<std::string> texts;
  std::vector<policy::yaml::Parser::Document> documents;
  std::multimap<std::string, Node> byKind;

  Manifests() {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(kDeploy))
      if (entry.path().extension() == ".yaml") files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    texts.reserve(files.size());
    for (const auto& file : files) {
      std::ifstream in(file);
      std::ostringstream text;
      text << in.rdbuf();
      texts.push_back(text.str());
      policy::yaml::Parser parser;
      parser.start(texts.back());
      while (auto document = parser.next()) {
        REQUIRE_FALSE(document->error);
        documents.push_back(std::move(*document));
      }
    }
    for (const auto& document : documents)
      if (document.root.isDefined()) byKind.emplace(scalar(document.root, {"kind"}), document.root);
  }

  static Node at(Node node, std::initializer_list<std::string_view> path) {
    for (auto key : path) {
      Node found;
      for (size_t i = 0; node.isMap() && i < node.size(); ++i)
        if (node.key(i).scalar() == key) found = node.value(i);
      node = found;
    }
    return node;
  }
  static std::string scalar(Node node, std::initializer_list<std::string_view> path) {
    Node found = at(node, path);
    return found.isScalar() ? found.scalar() : "";
  }
  static std::vector<std::string> strings(Node sequence) {
    std::vector<std::string> out;
    for (size_t i = 0; sequence.isSequence() && i < sequence.size(); ++i)
      out.push_back(sequence[i].scalar());
    return out;
  }
  Node one(const std::string& kind) const {
    REQUIRE(byKind.count(kind) == 1);
    return byKind.find(kind)->second;
  }
};

// The value after `flag` in a command line, "" when absent.
std::string after(const std::vector<std::string>& command, const std::string& flag) {
  for (size_t i = 0; i + 1 < command.size(); ++i)
    if (command[i] == flag) return command[i + 1];
  return "";
}

Node containerNamed(Node list, const std::string& name) {
  for (size_t i = 0; list.isSequence() && i < list.size(); ++i)
    if (Manifests::scalar(list[i], {"name"}) == name) return list[i];
  FAIL("no container " << name);
  return {};
}

void checkNodeNameFromDownwardApi(Node container) {
  Node env = Manifests::at(container, {"env"});
  bool found = false;
  for (size_t i = 0; env.isSequence() && i < env.size(); ++i)
    if (Manifests::scalar(env[i], {"name"}) == "NODE_NAME")
      found = Manifests::scalar(env[i], {"valueFrom", "fieldRef", "fieldPath"}) == "spec.nodeName";
  CHECK(found);
}

}  // namespace

TEST_CASE("every deploy manifest loads with the project's loader, as objects nftpol does not enforce") {
  policy::ClusterState state;
  std::vector<policy::Diagnostic> diagnostics;
  policy::loadPaths({kDeploy.string()}, state, diagnostics);
  std::set<std::string> skipped;
  for (const auto& d : diagnostics) {
    INFO(d.toString());
    CHECK(d.severity == policy::Severity::kWarning);
    auto at = d.message.find("kind ");
    REQUIRE(at == 0);
    skipped.insert(d.message.substr(5, d.message.find(' ', 5) - 5));
  }
  CHECK(skipped == std::set<std::string>{"ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet",
                                         "ServiceAccount"});
  CHECK(state.refs().empty());
}

TEST_CASE("the ClusterRole grants get, list and watch on exactly what the Kubernetes source watches") {
  Manifests manifests;
  std::set<std::pair<std::string, std::string>> granted;
  Node rules = Manifests::at(manifests.one("ClusterRole"), {"rules"});
  REQUIRE(rules.isSequence());
  for (size_t i = 0; i < rules.size(); ++i) {
    INFO("rule " << i);
    auto verbs = Manifests::strings(Manifests::at(rules[i], {"verbs"}));
    CHECK(std::set<std::string>(verbs.begin(), verbs.end()) == std::set<std::string>{"get", "list", "watch"});
    CHECK_FALSE(Manifests::at(rules[i], {"resourceNames"}).isDefined());
    CHECK_FALSE(Manifests::at(rules[i], {"nonResourceURLs"}).isDefined());
    for (const auto& group : Manifests::strings(Manifests::at(rules[i], {"apiGroups"})))
      for (const auto& resource : Manifests::strings(Manifests::at(rules[i], {"resources"}))) {
        CHECK(group != "*");
        CHECK(resource != "*");
        CHECK(granted.insert({group, resource}).second);  // each once
      }
  }
  std::set<std::pair<std::string, std::string>> watched;
  for (const auto& resource : controller::kWatchedResources)
    watched.insert({std::string(resource.group), std::string(resource.resource)});
  CHECK(granted == watched);
}

TEST_CASE("the binding gives the ClusterRole to the DaemonSet's service account") {
  Manifests manifests;
  Node binding = manifests.one("ClusterRoleBinding");
  Node account = manifests.one("ServiceAccount");
  Node daemonSet = manifests.one("DaemonSet");
  CHECK(Manifests::scalar(binding, {"roleRef", "kind"}) == "ClusterRole");
  CHECK(Manifests::scalar(binding, {"roleRef", "name"}) ==
        Manifests::scalar(manifests.one("ClusterRole"), {"metadata", "name"}));
  Node subjects = Manifests::at(binding, {"subjects"});
  REQUIRE(subjects.size() == 1);
  CHECK(Manifests::scalar(subjects[0], {"kind"}) == "ServiceAccount");
  CHECK(Manifests::scalar(subjects[0], {"name"}) == Manifests::scalar(account, {"metadata", "name"}));
  CHECK(Manifests::scalar(subjects[0], {"namespace"}) ==
        Manifests::scalar(account, {"metadata", "namespace"}));
  CHECK(Manifests::scalar(daemonSet, {"spec", "template", "spec", "serviceAccountName"}) ==
        Manifests::scalar(account, {"metadata", "name"}));
  CHECK(Manifests::scalar(daemonSet, {"metadata", "namespace"}) ==
        Manifests::scalar(account, {"metadata", "namespace"}));
}

TEST_CASE("the DaemonSet runs the controller in the node's network namespace, probed where it listens") {
  Manifests manifests;
  Node pod = Manifests::at(manifests.one("DaemonSet"), {"spec", "template", "spec"});
  CHECK(Manifests::scalar(pod, {"hostNetwork"}) == "true");
  Node controller = containerNamed(Manifests::at(pod, {"containers"}), "controller");
  auto command = Manifests::strings(Manifests::at(controller, {"command"}));
  REQUIRE(command.size() >= 2);
  CHECK(command[0] == "nftpol");
  CHECK(command[1] == "controller");
  CHECK(std::find(command.begin(), command.end(), "--in-cluster") != command.end());
  CHECK(after(command, "--node") == "$(NODE_NAME)");
  checkNodeNameFromDownwardApi(controller);
  auto capabilities =
      Manifests::strings(Manifests::at(controller, {"securityContext", "capabilities", "add"}));
  CHECK(capabilities == std::vector<std::string>{"NET_ADMIN"});

  std::string listen = after(command, "--listen");
  REQUIRE(listen.find(':') != std::string::npos);
  std::string host = listen.substr(0, listen.find(':')), port = listen.substr(listen.find(':') + 1);
  for (auto [probe, path] :
       {std::pair{"readinessProbe", "/readyz"}, std::pair{"livenessProbe", "/healthz"}}) {
    INFO(probe);
    CHECK(Manifests::scalar(controller, {probe, "httpGet", "path"}) == path);
    CHECK(Manifests::scalar(controller, {probe, "httpGet", "port"}) == port);
    CHECK(Manifests::scalar(controller, {probe, "httpGet", "host"}) == host);
  }
}

TEST_CASE("the init container installs the ConfigMap's template, which renders to a valid conflist") {
  Manifests manifests;
  Node pod = Manifests::at(manifests.one("DaemonSet"), {"spec", "template", "spec"});
  Node init = containerNamed(Manifests::at(pod, {"initContainers"}), "install-cni");
  auto command = Manifests::strings(Manifests::at(init, {"command"}));
  REQUIRE(command.size() >= 2);
  CHECK(command[1] == "install-cni");
  CHECK(std::find(command.begin(), command.end(), "--in-cluster") != command.end());
  CHECK(after(command, "--node") == "$(NODE_NAME)");
  checkNodeNameFromDownwardApi(init);

  // --template names a key of the ConfigMap, through the volume that mounts it.
  std::string templatePath = after(command, "--template");
  std::string mountDir = templatePath.substr(0, templatePath.rfind('/'));
  std::string key = templatePath.substr(templatePath.rfind('/') + 1);
  std::string volume;
  Node mounts = Manifests::at(init, {"volumeMounts"});
  for (size_t i = 0; i < mounts.size(); ++i)
    if (Manifests::scalar(mounts[i], {"mountPath"}) == mountDir)
      volume = Manifests::scalar(mounts[i], {"name"});
  REQUIRE_FALSE(volume.empty());
  std::string configMapName;
  std::map<std::string, std::string> hostPaths;
  Node volumes = Manifests::at(pod, {"volumes"});
  for (size_t i = 0; i < volumes.size(); ++i) {
    std::string name = Manifests::scalar(volumes[i], {"name"});
    if (name == volume) configMapName = Manifests::scalar(volumes[i], {"configMap", "name"});
    hostPaths[name] = Manifests::scalar(volumes[i], {"hostPath", "path"});
  }
  Node configMap = manifests.one("ConfigMap");
  CHECK(Manifests::scalar(configMap, {"metadata", "name"}) == configMapName);
  std::string templateText = Manifests::scalar(configMap, {"data", key});
  REQUIRE_FALSE(templateText.empty());

  // The config and bin directories are the host's, where the kubelet's runtime looks.
  for (auto [flag, hostPath] :
       {std::pair{"--cni-conf-dir", "/etc/cni/net.d"}, std::pair{"--cni-bin-dir", "/opt/cni/bin"}}) {
    INFO(flag);
    std::string dir = after(command, flag), mountedFrom;
    for (size_t i = 0; i < mounts.size(); ++i)
      if (Manifests::scalar(mounts[i], {"mountPath"}) == dir)
        mountedFrom = Manifests::scalar(mounts[i], {"name"});
    CHECK(hostPaths[mountedFrom] == hostPath);
  }

  auto rendered = controller::renderCniConfig(
      templateText, key, {*Cidr::parse("10.244.1.0/24"), *Cidr::parse("fd00:10:244:1::/64")});
  INFO((rendered ? "" : rendered.error().message));
  REQUIRE(rendered);
  CHECK(rendered->find(R"("ranges":[[{"subnet":"10.244.1.0/24"}],[{"subnet":"fd00:10:244:1::/64"}]])") !=
        std::string::npos);
}
