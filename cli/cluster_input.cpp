#include "cluster_input.h"

#include <ostream>

#include "nftpol/policy/loader.h"

namespace nftpol::cli {

std::unique_ptr<LoadedCluster> loadCluster(const std::vector<std::string>& paths,
                                           const std::vector<std::string>& overlay, std::ostream& err,
                                           bool auditAsEnforced) {
  if (paths.empty()) {
    err << "nftpol: --cluster PATH is required (files or directories of Kubernetes manifests)\n";
    return nullptr;
  }
  auto loaded = std::make_unique<LoadedCluster>();
  loaded->state = std::make_unique<policy::ClusterState>();
  policy::loadPaths(paths, *loaded->state, loaded->diagnostics);
  if (!overlay.empty()) policy::loadPaths(overlay, *loaded->state, loaded->diagnostics);
  auto implied = loaded->state->implyMissingNamespaces();
  loaded->diagnostics.insert(loaded->diagnostics.end(), implied.begin(), implied.end());
  for (const auto& d : loaded->diagnostics)
    err << d.toString() << "\n";
  if (policy::hasErrors(loaded->diagnostics)) {
    err << "nftpol: the manifests have errors; nothing was evaluated\n";
    return nullptr;
  }
  if (auditAsEnforced)
    for (policy::NetworkPolicy p : std::vector(loaded->state->policies()))  // a copy: upsert changes the list
      if (p.audit) {
        p.audit = false;
        loaded->state->upsert(std::move(p));
      }
  loaded->compiled = std::make_unique<policy::Compiled>(policy::Compiled::build(*loaded->state));
  return loaded;
}

}  // namespace nftpol::cli
