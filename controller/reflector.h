#pragma once

#include "nftpol/controller/kube_source.h"

namespace nftpol::controller {

// One resource's list and watch, on its own thread, until `stopping`: see KubeSource. `sleep` waits for a
// backoff and returns false when stopping interrupted it.
void reflect(KubeSource& source, const WatchedResource& resource, ApiClient& client,
             const KubeSourceOptions& options, const std::atomic<bool>& stopping,
             const std::function<bool(std::chrono::milliseconds)>& sleep);

}  // namespace nftpol::controller
