// nftpol controller (one-shot for now) and nftpol cleanup.
#include <ostream>

#include "args.h"
#include "cluster_input.h"
#include "commands.h"
#include "nftpol/controller/reconcile.h"
#include "nftpol/policy/loader.h"

namespace nftpol::cli {

int controllerCommand(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::parse(argv, {"manifests", "node"}, {"once"});
  if (!args || !args->positionals().empty() || !args->last("manifests") || !args->last("node")) {
    if (!args) err << "nftpol controller: " << args.error().message << "\n";
    err << "usage: nftpol controller --manifests DIR --node NODE --once\n";
    return kExitBadInput;
  }
  if (!args->flag("once")) {
    err << "nftpol controller: only --once is implemented so far (the watch loop is not)\n";
    return kExitBadInput;
  }
  auto cluster = loadCluster(args->all("manifests"), {}, err);
  if (!cluster) return kExitBadInput;
  auto backend = nft::NetlinkBackend::open();
  if (!backend) {
    err << "nftpol controller: " << backend.error().message << "\n";
    return 1;
  }
  auto result = controller::reconcile(*cluster->state, *args->last("node"), **backend);
  if (!result) {
    err << "nftpol controller: " << result.error().message << "\n";
    return 1;
  }
  out << "reconciled node " << *args->last("node") << ": " << result->pods << " local pods, "
      << result->policies << " policies, " << result->elements << " set elements, " << result->messages
      << " netlink messages\n";
  return 0;
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
  return 0;
}

}  // namespace nftpol::cli
