// nftpol controller and nftpol cleanup.
#include <cstdio>
#include <cstdlib>
#include <ostream>

#ifdef NFTPOL_SANITIZED
#include <sanitizer/lsan_interface.h>
#endif

#include "api_options.h"
#include "args.h"
#include "cluster_input.h"
#include "commands.h"
#include "flow_log_options.h"
#include "nftpol/controller/controller.h"
#include "nftpol/controller/cpprest_api_client.h"
#include "nftpol/controller/kube_config.h"
#include "nftpol/controller/kube_source.h"
#include "nftpol/controller/manifest_source.h"
#include "nftpol/controller/node_routes.h"
#include "nftpol/controller/stop_signal.h"
#include "nftpol/policy/loader.h"

namespace nftpol::cli {

int controllerCommand(const std::vector<std::string>& argv, std::ostream& /*out*/, std::ostream& err) {
  // First, before any thread starts, so that every thread inherits the blocked signals. Never destroyed: its
  // watchdog also covers what runs after this function (static destructors, cpprestsdk's thread pool), so a
  // stop ends the process within 1.5 s whatever it is doing.
  static auto* stop = new controller::StopSignal(std::chrono::milliseconds{1500});
  std::set<std::string> withValue = {"manifests", "kubeconfig",     "context",        "node",
                                     "listen",    "pod-cidr",       "api-timeout",    "cni-socket",
                                     "flow-log",  "flow-log-flush", "flow-log-max-mb"};
  std::set<std::string> flags = {"in-cluster", "once", "no-conntrack-revoke", "no-node-routes",
                                 "no-cni-socket"};
  withValue.insert(kFlowLogValueOptions.begin(), kFlowLogValueOptions.end());
  flags.insert(kFlowLogFlags.begin(), kFlowLogFlags.end());
  auto args = Args::parse(argv, withValue, flags);
  const char* nodeName = std::getenv("NODE_NAME");  // a DaemonSet sets it from the downward API
  std::string node = args && args->last("node") ? *args->last("node") : nodeName ? nodeName : "";
  int sources = args ? static_cast<int>(args->last("manifests").has_value()) +
                           static_cast<int>(args->last("kubeconfig").has_value()) +
                           static_cast<int>(args->flag("in-cluster"))
                     : 0;
  if (!args || !args->positionals().empty() || sources != 1 || node.empty()) {
    if (!args) err << "nftpol controller: " << args.error().message << "\n";
    if (args && sources != 1)
      err << "nftpol controller: give one of --manifests, --kubeconfig and --in-cluster\n";
    if (args && node.empty())
      err << "nftpol controller: --node is required (or NODE_NAME in the environment)\n";
    err << "usage: nftpol controller (--manifests DIR | --kubeconfig PATH [--context NAME] | --in-cluster)\n"
           "                         [--node NODE] [--once] [--listen 127.0.0.1:9402] "
           "[--no-conntrack-revoke]\n"
           "                         [--no-node-routes] [--pod-cidr CIDR]... [--api-timeout SECONDS]\n"
           "                         [--cni-socket /run/nftpol/cni.sock | --no-cni-socket]\n"
           "                         [--flow-log PATH] [--flow-log-flush SECONDS] [--flow-log-max-mb N]\n"
           "                         "
        << kFlowLogUsage << "\n";
    return kExitBadInput;
  }
  auto flowLog = flowLogOptions(*args, "nftpol controller", err);
  if (!flowLog) return kExitBadInput;
  double flush = 5;
  if (auto text = args->last("flow-log-flush")) {
    char* end = nullptr;
    flush = std::strtod(text->c_str(), &end);
    if (*end || !(flush >= 0.05 && flush <= 3600)) {
      err << "nftpol controller: --flow-log-flush: seconds, 0.05 to 3600\n";
      return kExitBadInput;
    }
  }
  long maxMb = 64;
  if (auto text = args->last("flow-log-max-mb")) {
    char* end = nullptr;
    maxMb = std::strtol(text->c_str(), &end, 10);
    if (*end || maxMb < 1 || maxMb > 1 << 20) {
      err << "nftpol controller: --flow-log-max-mb: megabytes a file, 1 to 1048576\n";
      return kExitBadInput;
    }
  }
  if (!*flowLog && args->last("flow-log")) {
    err << "nftpol controller: --flow-log with --no-flow-log\n";
    return kExitBadInput;
  }
  std::unique_ptr<controller::Source> source;
  if (auto dir = args->last("manifests")) {
    source = std::make_unique<controller::ManifestSource>(*dir, std::chrono::milliseconds{20},
                                                          std::chrono::milliseconds{250});
  } else {
    auto config = apiConfig(*args, "nftpol controller", err);
    if (!config) return kExitBadInput;
    // A watch sends a bookmark about every minute; two minutes of silence is a dead stream.
    long stall = 120;
    if (auto text = args->last("api-timeout")) {
      char* end = nullptr;
      stall = std::strtol(text->c_str(), &end, 10);
      if (*end || stall < 1 || stall > 3600) {
        err << "nftpol controller: --api-timeout: seconds, 1 to 3600\n";
        return kExitBadInput;
      }
    }
    auto connect = [config = *config, stall] {
      return controller::connectApi(config, std::chrono::seconds{stall});
    };
    source = std::make_unique<controller::KubeSource>(
        connect, controller::KubeSourceOptions{.server = config->server});
  }
  std::vector<Cidr> podCidrs;
  for (const auto& text : args->all("pod-cidr")) {
    auto cidr = Cidr::parse(text);
    if (!cidr) {
      err << "nftpol controller: --pod-cidr: " << cidr.error().message << "\n";
      return kExitBadInput;
    }
    podCidrs.push_back(*cidr);
  }
  auto backend = nft::NetlinkBackend::open();
  if (!backend) {
    err << "nftpol controller: " << backend.error().message << "\n";
    return 1;
  }
  controller::ControllerOptions options{
      .node = node,
      .once = args->flag("once"),
      .listen = args->last("listen").value_or("127.0.0.1:9402"),
      .revokeConntrack = !args->flag("no-conntrack-revoke"),
      .nodeRoutes = !args->flag("no-node-routes"),
      .podCidrs = std::move(podCidrs),
      .stopFd = stop->fd(),
      .cniSocket =
          args->flag("no-cni-socket") ? "" : args->last("cni-socket").value_or(cni::handoff::kDefaultSocket),
      .flowLog = *flowLog,
      .flowLogPath = args->last("flow-log").value_or(""),
      .flowLogMaxBytes = static_cast<uint64_t>(maxMb) << 20,
      .flowFlush = std::chrono::milliseconds{static_cast<long>(flush * 1000)}};
  controller::Controller controller(std::move(options), std::move(source), std::move(*backend));
  int status = controller.run();
  // Once run() returned the rules are in place and nothing is left to do. Tearing down cpprestsdk with a
  // request in flight is not reliable (a stop with a watch stalled ended in a crash at exit now and then
  // under load), so the process ends here, without destructors; a sanitizer build still checks for leaks
  // first.
  std::fflush(nullptr);
#ifdef NFTPOL_SANITIZED
  __lsan_do_leak_check();
#endif
  std::_Exit(status);
}

int cleanupCommand(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  if (!argv.empty()) {
    err << "usage: nftpol cleanup\n";
    return kExitBadInput;
  }
  auto backend = nft::NetlinkBackend::open();
  if (!backend) {
    err << "nftpol cleanup: " << backend.error().message << "\n";
    return 1;
  }
  auto removed = (*backend)->remove("nftpol");
  if (!removed) {
    err << "nftpol cleanup: " << removed.error().message << "\n";
    return 1;
  }
  out << (removed->messages ? "removed table inet nftpol\n" : "no table inet nftpol to remove\n");
  auto routes = controller::syncRoutes({});
  if (!routes) {
    err << "nftpol cleanup: " << routes.error().message << "\n";
    return 1;
  }
  if (routes->removed) out << "removed " << routes->removed << " route(s) to other nodes' pod subnets\n";
  return 0;
}

}  // namespace nftpol::cli
