#include "nftpol/controller/http_server.h"

#include <cpprest/http_listener.h>
#include <cpprest/producerconsumerstream.h>

#include <list>
#include <mutex>

namespace nftpol::controller {

using web::http::http_request;
using web::http::methods;
using web::http::status_codes;
using web::http::experimental::listener::http_listener;

namespace {
constexpr size_t kMaxFollowers = 16;
constexpr size_t kFollowerBacklog = 1 << 20;  // bytes a follower may lag before it is let go
using Buffer = concurrency::streams::producer_consumer_buffer<uint8_t>;

// Without the sync the server's reader waits for a whole chunk's worth before it sends anything.
void put(Buffer& buffer, const std::string& text) {
  if (!text.empty()) buffer.putn_nocopy(reinterpret_cast<const uint8_t*>(text.data()), text.size()).wait();
  buffer.sync().wait();
}
}  // namespace

struct HttpServer::Impl {
  http_listener listener;
  FlowFeed* feed = nullptr;
  std::mutex mu;
  std::list<std::pair<uint64_t, Buffer>> followers;  // open /flows?follow streams
  explicit Impl(const std::string& uri) : listener(uri) {}

  void flows(const http_request& request) {
    std::map<std::string, std::string> query;
    for (const auto& [k, v] : web::uri::split_query(request.request_uri().query()))
      query[web::uri::decode(k)] = web::uri::decode(v);
    auto filter = FlowFilter::parse(query);
    if (!filter) {
      request.reply(status_codes::BadRequest, "/flows: " + filter.error().message + "\n", "text/plain");
      return;
    }
    std::string recent = feed->recent(*filter);
    if (!filter->follow) {
      request.reply(status_codes::OK, recent, "application/x-ndjson");
      return;
    }
    std::lock_guard lock(mu);
    followers.remove_if([](const auto& f) { return !f.second.can_write(); });  // let go by the feed
    if (followers.size() >= kMaxFollowers) {
      request.reply(status_codes::ServiceUnavailable, "/flows: too many followers\n", "text/plain");
      return;
    }
    Buffer buffer;
    put(buffer, recent);
    web::http::http_response response(status_codes::OK);
    response.headers().set_content_type("application/x-ndjson");
    response.set_body(buffer.create_istream());
    request.reply(response);
    // The feed calls the writer under its own lock, in publish order. A follower too far behind (or gone:
    // nothing reads its stream any more) is closed and dropped by the feed, and forgotten here at the next
    // follow. Locks are taken in one order, this one's then the feed's; the writer takes none.
    uint64_t id = feed->follow(*filter, [buffer](const std::string& line) mutable {
      if (buffer.in_avail() > kFollowerBacklog) {
        buffer.close(std::ios_base::out);
        return false;
      }
      put(buffer, line);
      return true;
    });
    followers.emplace_back(id, buffer);
  }

  void closeFollowers() {
    std::lock_guard lock(mu);
    for (auto& [id, buffer] : followers) {
      feed->unfollow(id);
      buffer.close(std::ios_base::out);
    }
    followers.clear();
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  try {
    if (impl_->feed) impl_->closeFollowers();
    impl_->listener.close().wait();
  } catch (...) {  // destructors never throw; the process is going away anyway
  }
}

Result<std::unique_ptr<HttpServer>> HttpServer::start(const std::string& listen, const Metrics& metrics,
                                                      FlowFeed* feed) {
  try {
    auto impl = std::make_unique<Impl>("http://" + listen);
    impl->feed = feed;
    Impl* self = impl.get();
    impl->listener.support(methods::GET, [&metrics, self](const http_request& request) {
      std::string path = request.relative_uri().path();
      if (path == "/flows" && self->feed) {
        self->flows(request);
      } else if (path == "/healthz") {
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
        request.reply(status_codes::NotFound, "not found (try /healthz, /readyz, /metrics, /flows)\n",
                      "text/plain");
      }
    });
    impl->listener.open().wait();
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
  } catch (const std::exception& e) {
    return Error{"http: cannot listen on " + listen + ": " + e.what()};
  }
}

}  // namespace nftpol::controller
