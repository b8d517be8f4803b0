#pragma once

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "nftpol/policy/compiled.h"

namespace nftpol::cli {

// Exit statuses shared by the simulator commands.
constexpr int kExitBadInput = 2;

// A loaded cluster and its compiled form, kept together because Compiled points into the state.
struct LoadedCluster {
  std::unique_ptr<policy::ClusterState> state;
  std::unique_ptr<policy::Compiled> compiled;
  std::vector<policy::Diagnostic> diagnostics;
};

// Loads the --cluster paths (and then the --what-if paths over them, when given), prints every diagnostic to
// `err`, and compiles. Fails, having printed why, when there is no path or any error.
// With `auditAsEnforced`, policies in audit mode are loaded as enforced (--audit-as-enforced).
std::unique_ptr<LoadedCluster> loadCluster(const std::vector<std::string>& paths,
                                           const std::vector<std::string>& overlay, std::ostream& err,
                                           bool auditAsEnforced = false);

}  // namespace nftpol::cli
