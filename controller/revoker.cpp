#include "nftpol/controller/revoker.h"

#include <chrono>

#include "nftpol/controller/log.h"

namespace nftpol::controller {

Revoker::Revoker(Metrics& metrics) : metrics_(metrics), thread_([this] { run(); }) {}

Revoker::~Revoker() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void Revoker::submit(nft::Table committed) {
  {
    std::lock_guard lock(mu_);
    next_ = std::move(committed);
  }
  cv_.notify_one();
}

void Revoker::run() {
  for (;;) {
    nft::Table table;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return next_ || stopping_; });
      if (!next_) return;  // stopping, nothing left
      table = std::move(*next_);
      next_.reset();
    }
    auto start = std::chrono::steady_clock::now();
    auto revoked = conntrack_.revokeDenied(table);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!revoked) {
      logWarn(revoked.error().message, "event=conntrack-failed");
      continue;
    }
    metrics_.revoked(revoked->revoked);
    logInfo(revoked->revoked ? "established connections the change denies were cut"
                             : "no established connection is denied",
            "event=conntrack-revoked revoked=" + std::to_string(revoked->revoked) +
                " restored=" + std::to_string(revoked->restored) +
                " checked=" + std::to_string(revoked->checked) + " duration_ms=" + std::to_string(ms));
  }
}

}  // namespace nftpol::controller
