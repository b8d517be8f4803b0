// nftpol controller (one-shot for now) and nftpol cleanup.
#include <ostream>

#include "args.h"
#include "cluster_input.h"
#include "commands.h"
#include "nftpol/controller/controller.h"
#include "nftpol/controller/manifest_source.h"
#include "nftpol/controller/node_routes.h"
#include "nftpol/policy/loader.h"

namespace nftpol::cli {

int controllerCommand(const std::vector<std::string>& argv, std::ostream& /*out*/, std::ostream& err) {
  auto args = Args::parse(argv, {"manifests", "node", "listen", "pod-cidr"},
                          {"once", "no-conntrack-revoke", "no-node-routes"});
  if (!args || !args->positionals().empty() || !args->last("manifests") || !args->last("node")) {
    if (!args) err << "nftpol controller: " << args.error().message << "\n";
    err << "usage: nftpol controller --manifests DIR --node NODE [--once] [--listen 127.0.0.1:9402] "
           "[--no-conntrack-revoke] [--no-node-routes] [--pod-cidr CIDR]...\n";
    return kExitBadInput;
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
  controller::ControllerOptions options{.node = *args->last("node"),
                                        .once = args->flag("once"),
                                        .listen = args->last("listen").value_or("127.0.0.1:9402"),
                                        .revokeConntrack = !args->flag("no-conntrack-revoke"),
                                        .nodeRoutes = !args->flag("no-node-routes"),
                                        .podCidrs = std::move(podCidrs)};
  auto source = std::make_unique<controller::ManifestSource>(
      *args->last("manifests"), std::chrono::milliseconds{20}, std::chrono::milliseconds{250});
  return controller::Controller(std::move(options), std::move(source), std::move(*backend)).run();
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
