#include "nftpol/controller/http_server.h"

#include <cpprest/http_listener.h>

namespace nftpol::controller {

using web::http::http_request;
using web::http::methods;
using web::http::status_codes;
using web::http::experimental::listener::http_listener;

struct HttpServer::Impl {
  http_listener listener;
  explicit Impl(const std::string& uri) : listener(uri) {}
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  try {
    impl_->listener.close().wait();
  } catch (...) {  // destructors never throw; the process is going away anyway
  }
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& listen, const Metrics& metrics) {
  try {
    auto impl = std::make_unique<Impl>("http://" + listen);
    impl->listener.support(methods::GET, [&metrics](const http_request& request) {
      std::string path = request.relative_uri().path();
      if (path == "/healthz") {
        // Three minutes: the loop turns at least once a minute, and a full resync takes well under one.
        if (metrics.live(std::chrono::steady_clock::now(), std::chrono::seconds{180}))
          request.reply(status_codes::OK, "ok\n", "text/plain");
        else
          request.reply(status_codes::ServiceUnavailable, "the reconcile loop has not turned for 3 minutes\n",
                        "text/plain");
      } else if (path == "/readyz") {
        if (metrics.ready()) {
          request.reply(status_codes::OK,
                        "ready generation=" + std::to_string(metrics.syncedGeneration()) + "\n",
                        "text/plain");
        } else {
          request.reply(status_codes::ServiceUnavailable, "not ready: no successful sync yet\n",
                        "text/plain");
        }
      } else if (path == "/metrics") {
        request.reply(status_codes::OK, metrics.prometheus(), "text/plain; version=0.0.4");
      } else {
        request.reply(status_codes::NotFound, "not found (try /healthz, /readyz, /metrics)\n", "text/plain");
      }
    });
    impl->listener.open().wait();
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
  } catch (const std::exception& e) {
    return Error{"http: cannot listen on " + listen + ": " + e.what()};
  }
}

}  // namespace nftpol::controller
