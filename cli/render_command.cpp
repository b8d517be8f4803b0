// nftpol render: the nftables table the controller would program on one node, as `nft -f` text.
#include <ostream>

#include "args.h"
#include "cluster_input.h"
#include "commands.h"
#include "nftpol/render/render.h"

namespace nftpol::cli {

int renderCommand(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::parse(argv, {"cluster", "node"});
  if (!args || !args->positionals().empty() || !args->last("node")) {
    if (!args) err << "nftpol render: " << args.error().message << "\n";
    err << "usage: nftpol render --cluster PATH... --node NODE\n";
    return kExitBadInput;
  }
  auto cluster = loadCluster(args->all("cluster"), {}, err);
  if (!cluster) return kExitBadInput;
  std::vector<Cidr> podSubnets;
  if (const policy::Node* node = cluster->state->findNode(*args->last("node"))) podSubnets = node->podCIDRs;
  try {
    out << nft::toText(render::render(cluster->compiled->model(), *args->last("node"), podSubnets));
  } catch (const render::NameCollision& e) {
    err << "nftpol render: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace nftpol::cli
