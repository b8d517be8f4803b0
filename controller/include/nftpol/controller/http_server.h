#pragma once

#include <memory>
#include <string>

#include "nftpol/controller/metrics.h"
#include "nftpol/result.h"

namespace nftpol::controller {

// /healthz, /readyz (200 with the synced manifest generation once the first sync succeeded, 503 before) and
// /metrics (Prometheus text). cpprestsdk runs it on its own threads; its exceptions stop here.
class HttpServer {
 public:
  static Result<std::unique_ptr<HttpServer>> start(const std::string& listen, const Metrics& metrics);
  ~HttpServer();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nftpol::controller
