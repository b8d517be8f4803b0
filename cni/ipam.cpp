#include "nftpol/cni/ipam.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include "nftpol/json_value.h"

namespace nftpol::cni {

namespace {

Failure ipamFailure(std::string msg, std::string details = "") {
  return Failure{Code::kInternal, std::move(msg), std::move(details)};
}

Outcome<InterfaceAddress> parseInterfaceAddress(const std::string& text) {
  size_t slash = text.find('/');
  auto ip = IpAddress::parse(text.substr(0, slash));
  int prefix = -1;
  if (slash != std::string::npos && slash + 1 < text.size()) {
    try {
      prefix = std::stoi(text.substr(slash + 1));
    } catch (const std::exception&) {
    }
  }
  if (!ip || prefix < 0 || prefix > ip->bitLength())
    return ipamFailure("the IPAM plugin returned an invalid address \"" + text + "\"");
  return InterfaceAddress{*ip, prefix};
}

Outcome<std::optional<IpAddress>> optionalIp(const json::Value& o, const char* key) {
  auto* v = o.find(key);
  if (!v || v->isNull()) return std::optional<IpAddress>();
  auto ip = v->isString() ? IpAddress::parse(v->asString()) : Result<IpAddress>(Error{""});
  if (!ip) return ipamFailure(std::string("the IPAM plugin returned an invalid ") + key);
  return std::optional<IpAddress>(*ip);
}

}  // namespace

std::optional<std::string> findPlugin(const std::string& type, const std::vector<std::string>& path) {
  for (const auto& dir : path) {
    auto candidate = std::filesystem::path(dir) / type;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return std::nullopt;
}

Outcome<std::string> runIpam(const NetConf& conf, const Environment& env, const std::string& command) {
  auto found = findPlugin(conf.ipamType, env.path);
  if (!found)
    return Failure{Code::kInvalidConfig, "IPAM plugin \"" + conf.ipamType + "\" not found in CNI_PATH", ""};
  std::string executable = *found;

  std::string input = conf.text;
  // host-local 1.1.1 stops at 1.0.0, and ADD's result has the same shape in both. GC is only ever sent to a
  // plugin that said it speaks 1.1.0.
  if (conf.cniVersion == "1.1.0" && command != "GC") {
    auto root = json::parse(conf.text);  // parsed once already: it is a JSON object
    if (root) {
      (*root)["cniVersion"] = json::Value("1.0.0");
      input = root->serialize();
    }
  }

  int toChild[2], fromChild[2];
  if (::pipe2(toChild, O_CLOEXEC) != 0) return ipamFailure("pipe", std::strerror(errno));
  if (::pipe2(fromChild, O_CLOEXEC) != 0) {
    ::close(toChild[0]);
    ::close(toChild[1]);
    return ipamFailure("pipe", std::strerror(errno));
  }
  std::vector<std::string> vars = {"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + env.containerId,
                                   "CNI_NETNS=" + env.netns, "CNI_IFNAME=" + env.ifname};
  std::string path, args;
  for (const auto& d : env.path)
    path += (path.empty() ? "" : ":") + d;
  for (const auto& [k, v] : env.args)
    args += (args.empty() ? "" : ";") + k + "=" + v;
  vars.push_back("CNI_PATH=" + path);
  if (!args.empty()) vars.push_back("CNI_ARGS=" + args);
  std::vector<char*> envp;
  envp.reserve(vars.size() + 1);
  for (auto& v : vars)
    envp.push_back(v.data());
  envp.push_back(nullptr);

  pid_t child = ::fork();
  if (child < 0) return ipamFailure("fork", std::strerror(errno));
  if (child == 0) {
    ::dup2(toChild[0], 0);
    ::dup2(fromChild[1], 1);
    char* argv[] = {executable.data(), nullptr};
    ::execve(executable.c_str(), argv, envp.data());
    ::_exit(127);
  }
  ::close(toChild[0]);
  ::close(fromChild[1]);
  // Configs are small (far below a pipe's buffer), so writing all before reading cannot deadlock.
  const char* p = input.data();
  size_t left = input.size();
  while (left > 0) {
    ssize_t n = ::write(toChild[1], p, left);
    if (n <= 0) break;
    p += n;
    left -= static_cast<size_t>(n);
  }
  ::close(toChild[1]);
  std::string output;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fromChild[0], buf, sizeof buf)) > 0)
    output.append(buf, static_cast<size_t>(n));
  ::close(fromChild[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return output;

  // The delegate's own error object, passed on with its code.
  if (auto error = json::parse(output); error && error->isObject()) {
    auto text = [&](const char* key) {
      auto* v = error->find(key);
      return v && v->isString() ? v->asString() : std::string();
    };
    if (auto* code = error->find("code"); code && code->isInteger())
      return Failure{static_cast<Code>(code->asInteger()), "IPAM " + conf.ipamType + ": " + text("msg"),
                     text("details")};
  }
  return ipamFailure("IPAM plugin " + conf.ipamType + " failed", output);
}

Outcome<std::string> appendToPrevResult(const std::string& prevResult, const std::string& ours) {
  auto prev = json::parse(prevResult);
  auto mine = json::parse(ours);
  if (!prev || !prev->isObject())
    return Failure{Code::kDecodingFailure, "\"prevResult\" is not a JSON object",
                   prev ? "" : prev.error().message};
  if (!mine || !mine->isObject()) return ipamFailure("our own result is not a JSON object", ours);
  json::Value merged = *mine;
  int shift = 0;
  for (const char* key : {"interfaces", "ips", "routes"}) {
    auto* before = prev->find(key);
    if (before && !before->isNull() && !before->isArray())
      return Failure{Code::kInvalidConfig, "\"prevResult\" has a field of the wrong type",
                     std::string(key) + " must be an array"};
    json::Value::Array joined = before && before->isArray() ? before->asArray() : json::Value::Array();
    if (std::string_view(key) == "interfaces") shift = static_cast<int>(joined.size());
    if (auto* added = mine->find(key); added && added->isArray()) {
      for (json::Value item : added->asArray()) {
        // Our ips name our interfaces by index, which now come after the previous ones.
        if (auto* index = item.find("interface"); index && index->isInteger())
          item["interface"] = json::Value(index->asInteger() + shift);
        joined.push_back(std::move(item));
      }
    }
    merged[key] = json::Value(std::move(joined));
  }
  auto* dns = mine->find("dns");
  bool oursEmpty = !dns || (dns->isObject() && dns->asObject().empty());
  if (auto* prevDns = prev->find("dns"); oursEmpty && prevDns) merged["dns"] = *prevDns;
  return merged.serialize();
}

Outcome<IpamResult> parseIpamResult(const std::string& text) {
  auto root = json::parse(text);
  if (!root) return ipamFailure("the IPAM plugin's result is not JSON", root.error().message);
  if (!root->isObject()) return ipamFailure("the IPAM plugin's result is not a JSON object");
  IpamResult result;
  if (auto* ips = root->find("ips"); ips && ips->isArray()) {
    for (const auto& entry : ips->asArray()) {
      auto* address = entry.find("address");
      if (!address || !address->isString())
        return ipamFailure("the IPAM plugin returned an ip without an address");
      auto parsed = parseInterfaceAddress(address->asString());
      if (!parsed) return parsed.error();
      auto gateway = optionalIp(entry, "gateway");
      if (!gateway) return gateway.error();
      result.ips.push_back({*parsed, *gateway});
    }
  }
  if (result.ips.empty()) return ipamFailure("the IPAM plugin returned no address");
  if (auto* routes = root->find("routes"); routes && routes->isArray()) {
    for (const auto& entry : routes->asArray()) {
      auto* dst = entry.find("dst");
      if (!dst || !dst->isString())
        return ipamFailure("the IPAM plugin returned a route without a destination");
      auto cidr = Cidr::parse(dst->asString());
      if (!cidr) return ipamFailure("the IPAM plugin returned an invalid route \"" + dst->asString() + "\"");
      auto gw = optionalIp(entry, "gw");
      if (!gw) return gw.error();
      result.routes.push_back({*cidr, *gw});
    }
  }
  if (auto* dns = root->find("dns"); dns && dns->isObject()) result.dns = dns->serialize();
  return result;
}

}  // namespace nftpol::cni
