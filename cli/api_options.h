#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "args.h"
#include "nftpol/controller/kube_config.h"

namespace nftpol::cli {

// How the commands that talk to the API server find it: --kubeconfig PATH [--context NAME] or --in-cluster.
// Prints what is wrong to `err`, prefixed by `program`, and returns nothing on a bad or unreadable config.
std::optional<controller::KubeConfig> apiConfig(const Args& args, const std::string& program,
                                                std::ostream& err);

}  // namespace nftpol::cli
