// nftpol render: the nftables table the controller would program on one node, as `nft -f` text.
#include <ostream>

#include "args.h"
#include "cluster_input.h"
#include "commands.h"
#include "flow_log_options.h"
#include "nftpol/render/render.h"

namespace nftpol::cli {

int renderCommand(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  std::set<std::string> withValue = {"cluster", "node"};
  withValue.insert(kFlowLogValueOptions.begin(), kFlowLogValueOptions.end());
  auto args = Args::parse(argv, withValue, kFlowLogFlags);
  if (!args || !args->positionals().empty() || !args->last("node")) {
    if (!args) err << "nftpol render: " << args.error().message << "\n";
    err << "usage: nftpol render --cluster PATH... --node NODE " << kFlowLogUsage << "\n";
    return kExitBadInput;
  }
  auto flowLog = flowLogOptions(*args, "nftpol render", err);
  if (!flowLog) return kExitBadInput;
  auto cluster = loadCluster(args->all("cluster"), {}, err);
  if (!cluster) return kExitBadInput;
  std::vector<Cidr> podSubnets;
  if (const policy::Node* node = cluster->state->findNode(*args->last("node"))) podSubnets = node->podCIDRs;
  try {
    out << nft::toText(render::render(cluster->compiled->model(), *args->last("node"), podSubnets, *flowLog));
  } catch (const render::NameCollision& e) {
    err << "nftpol render: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace nftpol::cli
