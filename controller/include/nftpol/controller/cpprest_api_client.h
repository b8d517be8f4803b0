#pragma once

#include <chrono>
#include <memory>

#include "nftpol/controller/api_client.h"
#include "nftpol/controller/kube_config.h"

namespace nftpol::controller {

// An ApiClient over HTTPS with cpprestsdk: the server verified against the config's CA (or the system's), a
// bearer token (reread from its file at every request, as bound tokens rotate) or a client certificate. A
// response that sends nothing for `stall` fails, which is how a dead watch stream is noticed.
std::unique_ptr<ApiClient> connectApi(const KubeConfig& config, std::chrono::seconds stall);

}  // namespace nftpol::controller
