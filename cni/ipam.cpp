#include "nftpol/cni/ipam.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cpprest/json.h>
#include <cerrno>
#include <cstring>
#include <filesystem>

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

Outcome<std::optional<IpAddress>> optionalIp(const web::json::object& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end() || it->second.is_null()) return std::optional<IpAddress>();
  auto ip = it->second.is_string() ? IpAddress::parse(it->second.as_string()) : Result<IpAddress>(Error{""});
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
    auto root = web::json::value::parse(conf.text);
    root["cniVersion"] = web::json::value::string("1.0.0");
    input = root.serialize();
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
  try {
    auto error = web::json::value::parse(output);
    if (error.is_object() && error.has_field("code") && error.at("code").is_integer()) {
      std::string msg =
          error.has_field("msg") && error.at("msg").is_string() ? error.at("msg").as_string() : "";
      std::string details = error.has_field("details") && error.at("details").is_string()
                                ? error.at("details").as_string()
                                : "";
      return Failure{static_cast<Code>(error.at("code").as_integer()), "IPAM " + conf.ipamType + ": " + msg,
                     details};
    }
  } catch (const web::json::json_exception&) {
  }
  return ipamFailure("IPAM plugin " + conf.ipamType + " failed", output);
}

Outcome<std::string> appendToPrevResult(const std::string& prevResult, const std::string& ours) {
  web::json::value prev, mine;
  try {
    prev = web::json::value::parse(prevResult);
    mine = web::json::value::parse(ours);
  } catch (const web::json::json_exception& e) {
    return Failure{Code::kDecodingFailure, "\"prevResult\" is not JSON", e.what()};
  }
  auto list = [](web::json::value& v, const char* key) -> web::json::array* {
    if (!v.has_field(key)) v[key] = web::json::value::array();
    return v.at(key).is_array() ? &v.at(key).as_array() : nullptr;
  };
  auto *prevInterfaces = list(prev, "interfaces"), *prevIps = list(prev, "ips"),
       *prevRoutes = list(prev, "routes");
  if (!prevInterfaces || !prevIps || !prevRoutes)
    return Failure{Code::kInvalidConfig, "\"prevResult\" has a field of the wrong type",
                   "interfaces, ips and routes are arrays"};
  std::vector<web::json::value> interfaces(prevInterfaces->begin(), prevInterfaces->end());
  std::vector<web::json::value> ips(prevIps->begin(), prevIps->end());
  std::vector<web::json::value> routes(prevRoutes->begin(), prevRoutes->end());
  int shift = static_cast<int>(interfaces.size());
  for (auto& i : *list(mine, "interfaces"))
    interfaces.push_back(i);
  for (auto ip : *list(mine, "ips")) {
    if (ip.has_field("interface")) ip["interface"] = ip.at("interface").as_integer() + shift;
    ips.push_back(ip);
  }
  for (auto& r : *list(mine, "routes"))
    routes.push_back(r);
  mine["interfaces"] = web::json::value::array(interfaces);
  mine["ips"] = web::json::value::array(ips);
  mine["routes"] = web::json::value::array(routes);
  bool oursEmpty = !mine.has_field("dns") || (mine.at("dns").is_object() && mine.at("dns").size() == 0);
  if (oursEmpty && prev.has_field("dns")) mine["dns"] = prev.at("dns");
  return mine.serialize();
}

Outcome<IpamResult> parseIpamResult(const std::string& json) {
  web::json::value root;
  try {
    root = web::json::value::parse(json);
  } catch (const web::json::json_exception& e) {
    return ipamFailure("the IPAM plugin's result is not JSON", e.what());
  }
  if (!root.is_object()) return ipamFailure("the IPAM plugin's result is not a JSON object");
  IpamResult result;
  if (root.has_field("ips") && root.at("ips").is_array()) {
    for (const auto& entry : root.at("ips").as_array()) {
      if (!entry.is_object() || !entry.has_field("address") || !entry.at("address").is_string())
        return ipamFailure("the IPAM plugin returned an ip without an address");
      auto address = parseInterfaceAddress(entry.at("address").as_string());
      if (!address) return address.error();
      auto gateway = optionalIp(entry.as_object(), "gateway");
      if (!gateway) return gateway.error();
      result.ips.push_back({*address, *gateway});
    }
  }
  if (result.ips.empty()) return ipamFailure("the IPAM plugin returned no address");
  if (root.has_field("routes") && root.at("routes").is_array()) {
    for (const auto& entry : root.at("routes").as_array()) {
      if (!entry.is_object() || !entry.has_field("dst") || !entry.at("dst").is_string())
        return ipamFailure("the IPAM plugin returned a route without a destination");
      auto dst = Cidr::parse(entry.at("dst").as_string());
      if (!dst)
        return ipamFailure("the IPAM plugin returned an invalid route \"" + entry.at("dst").as_string() +
                           "\"");
      auto gw = optionalIp(entry.as_object(), "gw");
      if (!gw) return gw.error();
      result.routes.push_back({*dst, *gw});
    }
  }
  if (root.has_field("dns") && root.at("dns").is_object()) result.dns = root.at("dns").serialize();
  return result;
}

}  // namespace nftpol::cni
