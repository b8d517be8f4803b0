#include "nftpol/controller/kube_config.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

using namespace nftpol::controller;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char name[] = "/tmp/nftpol-kubeconfig.XXXXXX";
    path = mkdtemp(name);
  }
  ~TempDir() { fs::remove_all(path); }
  fs::path write(const std::string& name, const std::string& content) const {
    std::ofstream(path / name) << content;
    return path / name;
  }
};

// "-----BEGIN CERTIFICATE-----\nCA\n" and "token-from-data", base64.
const char* kConfig = R"(apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: lab
  cluster:
    server: https://10.0.0.1:6443/
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCg==
- name: other
  cluster:
    server: https://other:6443
    certificate-authority: ca.pem
    tls-server-name: kubernetes.default
contexts:
- name: dev
  context: {cluster: lab, user: admin}
- name: files
  context: {cluster: other, user: robot}
- name: execy
  context: {cluster: lab, user: plugin}
users:
- name: admin
  user:
    token: abc.def
- name: robot
  user:
    tokenFile: token
    client-certificate: client.pem
    client-key: client-key.pem
- name: plugin
  user:
    exec:
      command: aws
)";

}  // namespace

TEST_CASE("a kubeconfig's current context: server, CA data and token") {
  TempDir dir;
  auto config = loadKubeconfig(dir.write("config", kConfig));
  REQUIRE(config);
  CHECK(config->server == "https://10.0.0.1:6443");  // the trailing slash dropped: paths are appended
  CHECK(config->caPem == "-----BEGIN CERTIFICATE-----\nCA\n");
  CHECK(config->token == "abc.def");
  CHECK(config->clientCertPem.empty());
}

TEST_CASE("a named context: files relative to the kubeconfig, a token file, a client certificate") {
  TempDir dir;
  dir.write("ca.pem", "CA PEM");
  dir.write("token", "rotating-token\n");
  dir.write("client.pem", "CERT");
  dir.write("client-key.pem", "KEY");
  auto config = loadKubeconfig(dir.write("config", kConfig), "files");
  REQUIRE(config);
  CHECK(config->caPem == "CA PEM");
  CHECK(config->tlsServerName == "kubernetes.default");
  CHECK(config->token == "rotating-token");
  CHECK(config->tokenFile == (dir.path / "token").string());
  CHECK(config->clientCertPem == "CERT");
  CHECK(config->clientKeyPem == "KEY");
}

TEST_CASE("kubeconfig errors say where and what") {
  TempDir dir;
  auto path = dir.write("config", kConfig).string();
  auto exec = loadKubeconfig(path, "execy");
  REQUIRE_FALSE(exec);
  CHECK(exec.error().message ==
        path +
            ":33:7: user \"plugin\": exec credentials are not supported (use a token, "
            "a token file or a client certificate)");
  auto missing = loadKubeconfig(path, "nope");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message == path + ": no context named \"nope\"");
  auto files = loadKubeconfig(path, "files");  // ca.pem is not there
  REQUIRE_FALSE(files);
  INFO(files.error().message);
  CHECK(files.error().message.starts_with(path + ":12:28: certificate-authority: "));

  auto plain = dir.write("plain",
                         "current-context: c\ncontexts: [{name: c, context: {cluster: k}}]\n"
                         "clusters: [{name: k, cluster: {server: 'http://api:8080'}}]\n");
  auto http = loadKubeconfig(plain.string());
  REQUIRE_FALSE(http);
  CHECK(http.error().message == plain.string() + ":3:40: server: only https:// is supported");

  auto broken = dir.write("broken", "clusters: [\n");
  auto syntax = loadKubeconfig(broken.string());
  REQUIRE_FALSE(syntax);
  CHECK(syntax.error().message.starts_with(broken.string() + ":2:"));
  CHECK_FALSE(loadKubeconfig((dir.path / "absent").string()));
}

TEST_CASE("in a pod: the service's address and the service account's token and CA") {
  TempDir dir;
  dir.write("token", "sa-token\n");
  dir.write("ca.crt", "CLUSTER CA");
  std::map<std::string, const char*> env = {{"KUBERNETES_SERVICE_HOST", "fd00::1"},
                                            {"KUBERNETES_SERVICE_PORT", "443"}};
  auto lookup = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second;
  };
  auto config = inClusterConfig(lookup, dir.path.string());
  REQUIRE(config);
  CHECK(config->server == "https://[fd00::1]:443");
  CHECK(config->token == "sa-token");
  CHECK(config->tokenFile == (dir.path / "token").string());
  CHECK(config->caPem == "CLUSTER CA");

  env.erase("KUBERNETES_SERVICE_HOST");
  auto outside = inClusterConfig(lookup, dir.path.string());
  REQUIRE_FALSE(outside);
  CHECK(outside.error().message.find("KUBERNETES_SERVICE_HOST") != std::string::npos);
}
