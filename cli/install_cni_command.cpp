// nftpol install-cni: the DaemonSet's init container.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <ostream>
#include <sstream>

#include "api_options.h"
#include "args.h"
#include "cluster_input.h"
#include "commands.h"
#include "nftpol/controller/cni_install.h"
#include "nftpol/controller/cpprest_api_client.h"

namespace nftpol::cli {

namespace {

constexpr const char* kUsage =
    "usage: nftpol install-cni --template FILE --cni-conf-dir DIR [--conf-name NAME]\n"
    "                          [--cni-bin-dir DIR [--plugin PATH]...]\n"
    "                          (--pod-cidr CIDR... | --kubeconfig PATH [--context NAME] | --in-cluster)\n"
    "                          [--node NODE] [--wait SECONDS]\n";

std::optional<std::string> readFile(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (!in || !(text << in.rdbuf())) {
    error = path + ": " + std::strerror(errno ? errno : EIO);
    return std::nullopt;
  }
  return text.str();
}

// The plugin shipped with this nftpol: nftpol-bridge in the same directory.
std::string bundledPlugin() {
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  std::string path = n > 0 ? std::string(self, static_cast<size_t>(n)) : "";
  auto slash = path.rfind('/');
  return (slash == std::string::npos ? std::string(".") : path.substr(0, slash)) + "/nftpol-bridge";
}

std::string baseName(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

int installCniCommand(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::string program = "nftpol install-cni";
  auto args = Args::parse(argv,
                          {"template", "cni-conf-dir", "conf-name", "cni-bin-dir", "plugin", "pod-cidr",
                           "kubeconfig", "context", "node", "wait"},
                          {"in-cluster"});
  if (!args) {
    err << program << ": " << args.error().message << "\n" << kUsage;
    return kExitBadInput;
  }
  const char* nodeName = std::getenv("NODE_NAME");  // a DaemonSet sets it from the downward API
  std::string node = args->last("node").value_or(nodeName ? nodeName : "");
  int sources = static_cast<int>(!args->all("pod-cidr").empty()) +
                static_cast<int>(args->last("kubeconfig").has_value()) +
                static_cast<int>(args->flag("in-cluster"));
  std::string problem;
  if (!args->positionals().empty())
    problem = "unexpected argument " + args->positionals().front();
  else if (!args->last("template"))
    problem = "--template is required";
  else if (!args->last("cni-conf-dir"))
    problem = "--cni-conf-dir is required";
  else if (!args->all("plugin").empty() && !args->last("cni-bin-dir"))
    problem = "--plugin needs --cni-bin-dir";
  else if (sources != 1)
    problem = "give one of --pod-cidr, --kubeconfig and --in-cluster";
  else if (args->all("pod-cidr").empty() && node.empty())
    problem = "--node is required (or NODE_NAME in the environment)";
  long wait = 300;  // a new node gets its podCIDR from the node IPAM controller within seconds
  if (auto text = args->last("wait"); text && problem.empty()) {
    char* end = nullptr;
    wait = std::strtol(text->c_str(), &end, 10);
    if (*end || text->empty() || wait < 0 || wait > 86400) problem = "--wait: seconds, 0 to 86400";
  }
  if (!problem.empty()) {
    err << program << ": " << problem << "\n" << kUsage;
    return kExitBadInput;
  }

  // Everything that can be checked before touching the node is: a bad template or subnet changes nothing.
  std::string readError;
  std::string templatePath = *args->last("template");
  auto templateText = readFile(templatePath, readError);
  if (!templateText) {
    err << program << ": " << readError << "\n";
    return kExitBadInput;
  }
  std::vector<std::pair<std::string, std::string>> plugins;  // name, content
  if (args->last("cni-bin-dir")) {
    auto paths = args->all("plugin");
    if (paths.empty()) paths.push_back(bundledPlugin());
    for (const auto& path : paths) {
      auto content = readFile(path, readError);
      if (!content) {
        err << program << ": plugin " << readError << "\n";
        return kExitBadInput;
      }
      plugins.emplace_back(baseName(path), std::move(*content));
    }
  }

  std::vector<Cidr> podCidrs;
  for (const auto& text : args->all("pod-cidr")) {
    auto cidr = Cidr::parse(text);
    if (!cidr) {
      err << program << ": --pod-cidr: " << cidr.error().message << "\n";
      return kExitBadInput;
    }
    podCidrs.push_back(*cidr);
  }
  if (podCidrs.empty()) {
    auto config = apiConfig(*args, program, err);
    if (!config) return kExitBadInput;
    auto api = controller::connectApi(*config, std::chrono::seconds{30});
    auto found =
        controller::waitForPodCidrs(*api, node, std::chrono::seconds{wait},
                                    [&](const std::string& why) { err << program << ": " << why << "\n"; });
    if (!found) {
      err << program << ": " << found.error().message << "\n";
      return 1;
    }
    podCidrs = std::move(*found);
  }

  auto conflist = controller::renderCniConfig(*templateText, templatePath, podCidrs);
  if (!conflist) {
    err << program << ": " << conflist.error().message << "\n";
    return kExitBadInput;
  }
  // The plugins first: a runtime that finds the config must find what it names.
  for (const auto& [name, content] : plugins) {
    if (auto failed = controller::installFile(*args->last("cni-bin-dir"), name, content, 0755)) {
      err << program << ": " << failed->message << "\n";
      return 1;
    }
    out << "installed " << *args->last("cni-bin-dir") << "/" << name << "\n";
  }
  std::string confName = args->last("conf-name").value_or(baseName(templatePath));
  if (auto failed = controller::installFile(*args->last("cni-conf-dir"), confName, *conflist, 0644)) {
    err << program << ": " << failed->message << "\n";
    return 1;
  }
  std::string subnets;
  for (const auto& cidr : podCidrs)
    subnets += (subnets.empty() ? "" : ", ") + cidr.toString();
  out << "installed " << *args->last("cni-conf-dir") << "/" << confName << " (pod subnets " << subnets
      << ")\n";
  return 0;
}

}  // namespace nftpol::cli
