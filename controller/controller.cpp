#include "nftpol/controller/controller.h"

#include <algorithm>
#include <optional>

#include "nftpol/controller/http_server.h"
#include "nftpol/controller/log.h"
#include "nftpol/controller/reconcile.h"
#include "nftpol/render/render.h"

namespace nftpol::controller {

namespace {
using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kMinBackoff{100}, kMaxBackoff{30000};
constexpr std::chrono::milliseconds kIdle{60000};  // a periodic full resync repairs tampering nobody reported
}  // namespace

Controller::Controller(ControllerOptions options, std::unique_ptr<Source> source,
                       std::unique_ptr<nft::Backend> backend)
    : options_(std::move(options)),
      source_(std::move(source)),
      backend_(std::move(backend)),
      reconciler_(options_.node, *backend_) {}

// Takes what changed and reconciles. Returns true when the kernel now holds the source's current objects.
bool Controller::syncOnce(bool& firstSyncBlocked) {
  auto change = source_->take();
  // Kept until a commit succeeds: a failed or blocked sync is still owed them.
  uncommitted_.insert(uncommitted_.end(), change.arrivals.begin(), change.arrivals.end());
  for (const auto& d : change.diagnostics)
    logLine(d.severity == policy::Severity::kError ? "error" : "warn", d.toString(), "event=manifest");
  if (change.rejected) {
    metrics_.manifestErrors(change.rejected);
    logWarn(std::to_string(change.rejected) + " input(s) have errors; their last valid objects stay in force",
            "event=manifest-errors");
  }
  // Before the first sync a broken input has no last valid version, and enforcing without it could open
  // traffic that an earlier run closed: wait until the source is complete.
  if (!metrics_.ready() && !source_->complete()) {
    firstSyncBlocked = true;
    return false;
  }
  firstSyncBlocked = false;
  auto start = Clock::now();
  Result<ReconcileResult> result = Error{""};
  reconciler_.setPodSubnets(ownPodSubnets(source_->state(), options_.node, options_.podCidrs));
  try {
    if (!loaded_) {
      // The periodic resync also rebuilds the table from scratch; the incremental one must have been equal.
      std::optional<nft::Table> kept;
      if (metrics_.ready()) kept = reconciler_.table();
      reconciler_.load(source_->state());
      loaded_ = true;
      if (kept && !(*kept == reconciler_.table()))
        logError("the incrementally kept table differed from a full render; the full render is applied",
                 "event=incremental-drift");
    } else {
      reconciler_.update(source_->state(), change.objects);
    }
    result = reconciler_.apply();
  } catch (const render::NameCollision& e) {
    // Never by chance, and never silently: nothing of this render is applied, and the next try starts over.
    loaded_ = false;
    result = Error{"internal error: " + std::string(e.what())};
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (!result) {
    metrics_.reconcileFailed();
    logError(result.error().message, "event=reconcile-failed node=" + options_.node);
    return false;
  }
  if (revoker_ && result->messages > 0) revoker_->submit(reconciler_.table());
  if (!syncRoutes()) return false;
  metrics_.reconciled(seconds, result->messages, result->pods, result->policies, result->elements,
                      source_->generation());
  metrics_.committed(uncommitted_, Clock::now());
  uncommitted_.clear();
  logInfo("reconciled",
          "event=reconciled node=" + options_.node + " generation=" + std::to_string(source_->generation()) +
              " messages=" + std::to_string(result->messages) + " pods=" + std::to_string(result->pods) +
              " policies=" + std::to_string(result->policies) +
              " duration_ms=" + std::to_string(seconds * 1000));
  return true;
}

// Before the generation is reported synced, so that readiness also means the routes are in place.
bool Controller::syncRoutes() {
  if (!options_.nodeRoutes) return true;
  auto want = desiredRoutes(source_->state(), options_.node, options_.podCidrs);
  if (routes_ && *routes_ == want) return true;
  auto changed = controller::syncRoutes(want);
  if (!changed) {
    metrics_.reconcileFailed();
    logError(changed.error().message, "event=routes-failed node=" + options_.node);
    return false;
  }
  routes_ = want;
  if (changed->added || changed->removed)
    logInfo("routes to other nodes' pod subnets updated",
            "event=routes added=" + std::to_string(changed->added) +
                " removed=" + std::to_string(changed->removed) + " routes=" + std::to_string(want.size()));
  return true;
}

int Controller::run() {
  const int stopFd = options_.stopFd;
  if (options_.revokeConntrack) revoker_ = std::make_unique<Revoker>(metrics_);

  if (options_.once) {
    // A directory is whole at once; the API's lists take a moment: wait (bounded) until the source is
    // complete.
    bool blocked = false, ok = false;
    if (auto failed = source_->start()) {
      logError(failed->message, "event=watch-failed");
    } else {
      auto deadline = Clock::now() + source_->completionWait();
      while (!(ok = syncOnce(blocked)) && blocked && Clock::now() < deadline)
        if (source_->wait(std::chrono::milliseconds{100}, stopFd) == Source::Wake::kStop) break;
    }
    return ok ? 0 : (blocked ? 2 : 1);
  }

  std::unique_ptr<HttpServer> http;
  if (!options_.listen.empty()) {
    auto started = HttpServer::start(options_.listen, metrics_);
    if (!started) {
      logError(started.error().message, "event=http-failed");
      return 1;
    }
    http = std::move(*started);
    logInfo("serving /healthz /readyz /metrics", "event=http listen=" + options_.listen);
  }
  if (auto failed = source_->start()) {
    logError(failed->message, "event=watch-failed");
    return 1;
  }
  logInfo("watching", "event=start " + source_->describe() + " node=" + options_.node);

  auto backoff = kMinBackoff;
  bool pending = true;
  for (;;) {
    metrics_.loopTurned();
    if (pending) {
      bool blocked = false;
      if (syncOnce(blocked)) {
        pending = false;
        backoff = kMinBackoff;
      } else if (!blocked) {
        logWarn("retrying", "event=retry in_ms=" + std::to_string(backoff.count()));
      }
    }
    auto wake = source_->wait(pending ? backoff : kIdle, stopFd);
    if (wake == Source::Wake::kStop) break;
    if (wake == Source::Wake::kTimeout) {
      if (pending) backoff = std::min(backoff * 2, kMaxBackoff);
      if (!pending) {  // the periodic resync: a fresh dump, and the table rebuilt from every object
        backend_->forget();
        loaded_ = false;
        routes_.reset();
      }
    }
    pending = true;
  }
  logInfo("stopping; the rules stay in place", "event=stop");
  return 0;
}

}  // namespace nftpol::controller
