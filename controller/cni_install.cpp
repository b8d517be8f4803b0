#include "nftpol/controller/cni_install.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "nftpol/cni/config.h"
#include "nftpol/json_value.h"

namespace nftpol::controller {

Result<std::vector<Cidr>> podCidrsOfNode(std::string_view nodeJson) {
  auto node = json::parse(nodeJson);
  if (!node) return Error{"the Node is not JSON: " + node.error().message};
  const json::Value* spec = node->find("spec");
  std::vector<const json::Value*> texts;
  if (const json::Value* list = spec ? spec->find("podCIDRs") : nullptr; list && list->isArray()) {
    for (const auto& item : list->asArray())
      texts.push_back(&item);
  } else if (const json::Value* one = spec ? spec->find("podCIDR") : nullptr; one && !one->isNull()) {
    texts.push_back(one);
  }
  std::vector<Cidr> cidrs;
  for (const json::Value* text : texts) {
    if (!text->isString()) return Error{"the Node's spec.podCIDRs must hold strings"};
    if (text->asString().empty()) continue;
    auto cidr = Cidr::parse(text->asString());
    if (!cidr) return Error{"the Node's pod subnet " + text->asString() + ": " + cidr.error().message};
    cidrs.push_back(*cidr);
  }
  return cidrs;
}

Result<std::vector<Cidr>> waitForPodCidrs(ApiClient& api, const std::string& node,
                                          std::chrono::milliseconds timeout,
                                          const std::function<void(const std::string&)>& progress) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string why;
  for (auto pause = std::chrono::milliseconds{200};;
       pause = std::min(pause * 2, std::chrono::milliseconds{5000})) {
    auto got = api.get("/api/v1/nodes/" + node);
    if (!got) {
      why = got.error().message;
    } else if (got->status == 401 || got->status == 403) {
      // Credentials do not heal by waiting.
      return Error{"reading Node " + node + ": HTTP " + std::to_string(got->status) + ": " + got->body};
    } else if (got->status == 404) {
      why = "Node " + node + " does not exist (yet)";
    } else if (got->status != 200) {
      why = "reading Node " + node + ": HTTP " + std::to_string(got->status);
    } else {
      auto cidrs = podCidrsOfNode(got->body);
      if (!cidrs) return Error{"Node " + node + ": " + cidrs.error().message};
      if (!cidrs->empty()) return cidrs;
      why = "Node " + node + " has no spec.podCIDR yet";
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline)
      return Error{why + " (gave up after " +
                   std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) + " s)"};
    progress(why + "; asking again");
    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(pause, deadline - now));
  }
}

namespace {

// A plugin whose IPAM is host-local gets the pod subnets as its ranges; returns whether it did.
int fillRanges(json::Value& plugin, const std::vector<Cidr>& podCidrs) {
  if (!plugin.isObject()) return 0;
  const json::Value* ipam = plugin.find("ipam");
  if (!ipam || !ipam->isObject()) return 0;
  const json::Value* type = ipam->find("type");
  if (!type || !type->isString() || type->asString() != "host-local") return 0;
  json::Value::Array ranges;
  for (const Cidr& cidr : podCidrs)
    ranges.push_back(json::Value::Array{json::Value::Object{{"subnet", cidr.toString()}}});
  json::Value& section = plugin["ipam"];
  section["ranges"] = std::move(ranges);
  return 1;
}

}  // namespace

Result<std::string> renderCniConfig(std::string_view templateText, const std::string& templateName,
                                    const std::vector<Cidr>& podCidrs, const std::string& controllerSocket) {
  auto fail = [&](const std::string& what) { return Error{templateName + ": " + what}; };
  if (podCidrs.empty()) return fail("no pod subnet to fill in");
  auto parsed = json::parse(templateText);
  if (!parsed) return fail("not JSON: " + parsed.error().message);
  json::Value root = std::move(*parsed);
  if (!root.isObject()) return fail("must be a JSON object (a network configuration or a .conflist)");
  // Copies: the plugins below are changed in place, which may move the root's members.
  const json::Value* versionMember = root.find("cniVersion");
  const json::Value* nameMember = root.find("name");
  if (!versionMember || !versionMember->isString()) return fail("\"cniVersion\" is required");
  if (!nameMember || !nameMember->isString()) return fail("\"name\" is required");
  const json::Value versionValue = *versionMember, nameValue = *nameMember;
  const json::Value* version = &versionValue;
  const json::Value* name = &nameValue;

  // A conflist's plugins each get the list's version and name, as libcni hands them over.
  bool isList = root.find("plugins") != nullptr;
  if (isList && !root.find("plugins")->isArray()) return fail("\"plugins\" must be a list");
  std::vector<json::Value*> plugins;
  if (isList) {
    for (auto& plugin : root["plugins"].asArray())
      plugins.push_back(&plugin);
  } else {
    plugins.push_back(&root);
  }
  int filled = 0;
  for (json::Value* plugin : plugins)
    filled += fillRanges(*plugin, podCidrs);
  if (filled == 0) return fail("no plugin with a host-local \"ipam\" section to give the pod subnets to");

  for (size_t i = 0; i < plugins.size(); ++i) {
    json::Value conf = *plugins[i];
    if (!conf.isObject()) return fail("plugin " + std::to_string(i + 1) + " must be a JSON object");
    const json::Value* type = conf.find("type");
    if (!type || !type->isString()) return fail("plugin " + std::to_string(i + 1) + ": \"type\" is required");
    if (type->asString() != "nftpol-bridge") continue;  // other plugins check their own configs
    (*plugins[i])["controllerSocket"] = controllerSocket;
    conf["controllerSocket"] = controllerSocket;
    conf["cniVersion"] = *version;
    conf["name"] = *name;
    auto checked = cni::parseConfig(conf.serialize());
    if (!checked)
      return fail("plugin " + std::to_string(i + 1) + " (nftpol-bridge): " + checked.error().msg +
                  (checked.error().details.empty() ? "" : " (" + checked.error().details + ")"));
  }
  return root.serialize() + "\n";
}

std::optional<Error> installFile(const std::string& dir, const std::string& name, std::string_view content,
                                 mode_t mode) {
  std::string path = dir + "/" + name;
  // A dot name: the runtime loads every *.conflist and *.conf of the directory, and must not see this one.
  std::string temporary = dir + "/." + name + ".nftpol-tmp";
  auto failure = [&](const std::string& what) {
    Error error{what + " " + temporary + ": " + std::strerror(errno)};
    ::unlink(temporary.c_str());
    return error;
  };
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return failure("creating");
  for (size_t done = 0; done < content.size();) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return failure("writing");
    }
    done += static_cast<size_t>(n);
  }
  // The mode asked for, not what the umask left of it: a plugin must be executable.
  if (::fchmod(fd, mode) != 0 || ::fsync(fd) != 0) {
    ::close(fd);
    return failure("finishing");
  }
  if (::close(fd) != 0) return failure("closing");
  if (::rename(temporary.c_str(), path.c_str()) != 0) return failure("renaming to " + path + ":");
  return std::nullopt;
}

namespace {

Result<std::string> readWhole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf())) {
    int err = errno ? errno : EIO;
    return Error{path + ": " + std::strerror(err), err};
  }
  return text.str();
}

std::string baseName(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The plugin shipped with this nftpol: nftpol-bridge in the same directory.
std::string bundledPlugin() {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  std::string path = n > 0 ? std::string(self, static_cast<size_t>(n)) : "";
  auto slash = path.rfind('/');
  return (slash == std::string::npos ? std::string(".") : path.substr(0, slash)) + "/nftpol-bridge";
}

}  // namespace

Result<CniInstallInputs> readCniInstallInputs(const std::string& templatePath, bool withPlugins,
                                              const std::vector<std::string>& pluginPaths) {
  CniInstallInputs inputs{.templatePath = templatePath};
  auto text = readWhole(templatePath);
  if (!text) return text.error();
  inputs.templateText = std::move(*text);
  if (!withPlugins) return inputs;
  std::vector<std::string> paths = pluginPaths;
  if (paths.empty()) paths.push_back(bundledPlugin());
  for (const auto& path : paths) {
    auto content = readWhole(path);
    if (!content) return Error{"plugin " + content.error().message, content.error().errnum};
    inputs.plugins.emplace_back(baseName(path), std::move(*content));
  }
  return inputs;
}

Result<std::vector<std::string>> installCni(const CniInstallInputs& inputs, const std::string& conflist,
                                            const std::optional<std::string>& binDir,
                                            const std::string& confDir, const std::string& confName) {
  std::vector<std::string> written;
  if (binDir) {
    for (const auto& [name, content] : inputs.plugins) {
      if (auto failed = installFile(*binDir, name, content, 0755)) return *failed;
      written.push_back(*binDir + "/" + name);
    }
  }
  std::string name = confName.empty() ? baseName(inputs.templatePath) : confName;
  if (auto failed = installFile(confDir, name, conflist, 0644)) return *failed;
  written.push_back(confDir + "/" + name);
  return written;
}

}  // namespace nftpol::controller
