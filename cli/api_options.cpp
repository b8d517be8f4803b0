#include "api_options.h"

#include <cstdlib>
#include <ostream>

namespace nftpol::cli {

std::optional<controller::KubeConfig> apiConfig(const Args& args, const std::string& program,
                                                std::ostream& err) {
  auto config = args.flag("in-cluster")
                    ? controller::inClusterConfig([](const char* name) { return std::getenv(name); })
                    : controller::loadKubeconfig(args.last("kubeconfig").value_or(""),
                                                 args.last("context").value_or(""));
  if (!config) {
    err << program << ": " << config.error().message << "\n";
    return std::nullopt;
  }
  return *config;
}

}  // namespace nftpol::cli
