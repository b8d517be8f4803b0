#include "nftpol/controller/kube_config.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace nftpol::controller {
namespace {

namespace fs = std::filesystem;

Result<std::string> readFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Error{path.string() + ": cannot read"};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string at(const std::string& file, const YAML::Node& node) {
  auto mark = node.Mark();
  return file + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
}

std::optional<std::string> base64(std::string text) {
  std::erase_if(text, [](char c) { return c == '\n' || c == '\r' || c == ' '; });
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()), static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t padding = text.ends_with("==") ? 2 : text.ends_with("=") ? 1 : 0;
  out.resize(static_cast<size_t>(n) - padding);
  return out;
}

// The entry called `name` of a list of {name, KEY: {...}} (clusters, users, contexts).
YAML::Node named(const YAML::Node& list, const std::string& name, const char* key) {
  if (list && list.IsSequence())
    for (const auto& item : list)
      if (item["name"] && item["name"].as<std::string>() == name && item[key]) return item[key];
  return YAML::Node(YAML::NodeType::Undefined);
}

// A PEM given as FIELD-data (base64) or as FIELD (a file name, relative to the kubeconfig).
Result<std::string> pemOf(const std::string& file, const YAML::Node& entry, const std::string& field) {
  if (auto data = entry[field + "-data"]) {
    auto decoded = base64(data.as<std::string>());
    if (!decoded) return Error{at(file, data) + ": " + field + "-data: not base64"};
    return *decoded;
  }
  if (auto name = entry[field]) {
    auto content = readFile(fs::path(file).parent_path() / name.as<std::string>());
    if (!content) return Error{at(file, name) + ": " + field + ": " + content.error().message};
    return *content;
  }
  return std::string();
}

}  // namespace

Result<std::string> readToken(const std::string& path) {
  auto token = readFile(path);
  if (!token) return token.error();
  // Token files end with a newline more often than not; the header must not.
  while (!token->empty() && (token->back() == '\n' || token->back() == '\r'))
    token->pop_back();
  return token;
}

Result<KubeConfig> loadKubeconfig(const std::string& path, const std::string& context) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    return Error{path + ": cannot read"};
  } catch (const YAML::Exception& e) {
    return Error{path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                 ": " + e.msg};
  }
  try {
    std::string name = context;
    if (name.empty()) {
      if (!root["current-context"]) return Error{path + ": no current-context, and no --context given"};
      name = root["current-context"].as<std::string>();
    }
    auto ctx = named(root["contexts"], name, "context");
    if (!ctx) return Error{path + ": no context named \"" + name + "\""};
    if (!ctx["cluster"]) return Error{at(path, ctx) + ": context \"" + name + "\" names no cluster"};
    auto clusterName = ctx["cluster"].as<std::string>();
    auto cluster = named(root["clusters"], clusterName, "cluster");
    if (!cluster) return Error{at(path, ctx["cluster"]) + ": no cluster named \"" + clusterName + "\""};

    KubeConfig config{.where = path + " (context " + name + ")"};
    if (!cluster["server"])
      return Error{at(path, cluster) + ": cluster \"" + clusterName + "\" has no server"};
    config.server = cluster["server"].as<std::string>();
    if (!config.server.starts_with("https://"))
      return Error{at(path, cluster["server"]) + ": server: only https:// is supported"};
    while (config.server.ends_with("/"))
      config.server.pop_back();
    if (cluster["insecure-skip-tls-verify"])
      config.insecureSkipTlsVerify = cluster["insecure-skip-tls-verify"].as<bool>();
    if (cluster["tls-server-name"]) config.tlsServerName = cluster["tls-server-name"].as<std::string>();
    auto ca = pemOf(path, cluster, "certificate-authority");
    if (!ca) return ca.error();
    config.caPem = std::move(*ca);

    if (ctx["user"]) {
      auto userName = ctx["user"].as<std::string>();
      auto user = named(root["users"], userName, "user");
      if (!user) return Error{at(path, ctx["user"]) + ": no user named \"" + userName + "\""};
      for (const char* unsupported : {"exec", "auth-provider", "username", "password"})
        if (user[unsupported])
          return Error{at(path, user[unsupported]) + ": user \"" + userName + "\": " + unsupported +
                       " credentials are not supported (use a token, a token file or a client certificate)"};
      if (user["token"]) config.token = user["token"].as<std::string>();
      if (user["tokenFile"]) {
        config.tokenFile = (fs::path(path).parent_path() / user["tokenFile"].as<std::string>()).string();
        auto token = readToken(config.tokenFile);
        if (!token) return Error{at(path, user["tokenFile"]) + ": tokenFile: " + token.error().message};
        config.token = *token;
      }
      auto cert = pemOf(path, user, "client-certificate");
      if (!cert) return cert.error();
      auto key = pemOf(path, user, "client-key");
      if (!key) return key.error();
      if (cert->empty() != key->empty())
        return Error{at(path, user) + ": user \"" + userName +
                     "\": a client certificate needs its key, and a key its certificate"};
      config.clientCertPem = std::move(*cert);
      config.clientKeyPem = std::move(*key);
    }
    return config;
  } catch (const YAML::Exception& e) {
    return Error{path + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                 ": " + e.msg};
  }
}

Result<KubeConfig> inClusterConfig(const std::function<const char*(const char*)>& environment,
                                   const std::string& root) {
  const char* host = environment("KUBERNETES_SERVICE_HOST");
  const char* port = environment("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port)
    return Error{
        "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set (not in a pod?)"};
  std::string h = host;
  KubeConfig config{.where = "in-cluster"};
  config.server = "https://" + (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + port;
  config.tokenFile = root + "/token";
  auto token = readToken(config.tokenFile);
  if (!token) return Error{"in-cluster: " + token.error().message};
  config.token = *token;
  auto ca = readFile(root + "/ca.crt");
  if (!ca) return Error{"in-cluster: " + ca.error().message};
  config.caPem = *ca;
  return config;
}

}  // namespace nftpol::controller
