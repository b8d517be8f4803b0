#pragma once

#include <memory>
#include <string>

#include "nftpol/controller/flow_log.h"
#include "nftpol/controller/metrics.h"
#include "nftpol/result.h"

namespace nftpol::controller {

// /healthz, /readyz, /flows (200 with the synced manifest generation once the first sync succeeded, 503
// before) and /metrics (Prometheus text). cpprestsdk runs it on its own threads; its exceptions stop here.
class HttpServer {
 public:
  // With a feed, also /flows: the recent flow log records as JSON lines, filtered by the query (verdict,
  // namespace, pod), and with follow=true the ones after them as they come, until the client goes.
  static Result<std::unique_ptr<HttpServer>> start(const std::string& listen, const Metrics& metrics,
                                                   FlowFeed* feed = nullptr);
  ~HttpServer();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nftpol::controller
