// nftpol install-cni: the DaemonSet's init container.
#include <cstdlib>
#include <ostream>

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
    "                          [--node NODE] [--wait SECONDS] [--cni-socket /run/nftpol/cni.sock]\n";

}  // namespace

int installCniCommand(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::string program = "nftpol install-cni";
  auto args = Args::parse(argv,
                          {"template", "cni-conf-dir", "conf-name", "cni-bin-dir", "plugin", "pod-cidr",
                           "kubeconfig", "context", "node", "wait", "cni-socket"},
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
  std::string templatePath = *args->last("template");
  auto inputs = controller::readCniInstallInputs(templatePath, args->last("cni-bin-dir").has_value(),
                                                 args->all("plugin"));
  if (!inputs) {
    err << program << ": " << inputs.error().message << "\n";
    return kExitBadInput;
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

  auto conflist = controller::renderCniConfig(inputs->templateText, templatePath, podCidrs,
                                              args->last("cni-socket").value_or("/run/nftpol/cni.sock"));
  if (!conflist) {
    err << program << ": " << conflist.error().message << "\n";
    return kExitBadInput;
  }
  auto written = controller::installCni(*inputs, *conflist, args->last("cni-bin-dir"),
                                        *args->last("cni-conf-dir"), args->last("conf-name").value_or(""));
  if (!written) {
    err << program << ": " << written.error().message << "\n";
    return 1;
  }
  std::string subnets;
  for (const auto& cidr : podCidrs)
    subnets += (subnets.empty() ? "" : ", ") + cidr.toString();
  for (size_t i = 0; i < written->size(); ++i) {
    out << "installed " << (*written)[i];
    if (i + 1 == written->size()) out << " (pod subnets " << subnets << ")";
    out << "\n";
  }
  return 0;
}

}  // namespace nftpol::cli
