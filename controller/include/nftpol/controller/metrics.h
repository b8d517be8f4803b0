#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <span>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace nftpol::controller {

// A Prometheus histogram with fixed upper bounds (seconds).
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size()) {}
  void observe(double seconds);
  void render(std::ostringstream& out, const char* name, const char* help) const;
  uint64_t count() const { return count_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // cumulative, as exposed
  uint64_t count_ = 0;
  double sum_ = 0;
};

// The controller's metrics, rendered in the Prometheus text exposition format. Updated by the reconcile loop,
// read by the HTTP thread.
class Metrics {
 public:
  void reconciled(double seconds, size_t messages, size_t pods, size_t policies, size_t elements,
                  size_t generation);
  void reconcileFailed();
  void manifestErrors(size_t files);
  void revoked(size_t connections);
  // The changes a commit made the kernel hold, by when each arrived at the controller.
  void committed(std::span<const std::chrono::steady_clock::time_point> arrivals,
                 std::chrono::steady_clock::time_point now);

  // Flow log records: `count` connections with this verdict ("denied", "allowed") decided on `side` by
  // namespace/policy (an isolating policy of a deny, the admitting policy of an allow).
  void policyVerdicts(const std::string& verdict, const std::string& side, const std::string& ns,
                      const std::string& policy, uint64_t count);
  // What the flow log missed so far, by reason, in packets ("rate-limit", "sequence-gap", "aggregates",
  // "unreadable", "unknown-prefix"), and "overrun" (times the socket overflowed): running totals.
  void flowLogLost(const std::string& reason, uint64_t total);

  // The reconcile loop calls this at every turn; it turns at least once a minute (the periodic resync).
  void loopTurned(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    lastTurnNs_ = now.time_since_epoch().count();
  }
  // /healthz: false once the loop has not turned for `limit` (a reconcile stuck in the kernel, a deadlock),
  // so that the kubelet's liveness probe restarts the controller.
  bool live(std::chrono::steady_clock::time_point now, std::chrono::seconds limit) const {
    auto last = lastTurnNs_.load();
    return last == 0 || now.time_since_epoch().count() - last <= std::chrono::nanoseconds(limit).count();
  }
  bool ready() const { return syncedGeneration_.load() > 0; }
  size_t syncedGeneration() const { return syncedGeneration_.load() - 1; }  // valid once ready()
  std::string prometheus() const;

 private:
  mutable std::mutex mu_;
  Histogram reconcileDuration_{{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0}};
  Histogram eventToCommit_{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0}};
  uint64_t errors_ = 0, manifestErrors_ = 0, messages_ = 0, revoked_ = 0;
  double lastSyncUnix_ = 0;
  size_t pods_ = 0, policies_ = 0, elements_ = 0;
  std::map<std::tuple<std::string, std::string, std::string, std::string>, uint64_t> verdicts_;
  std::map<std::string, uint64_t> flowLost_;
  std::atomic<size_t> syncedGeneration_{0};
  std::atomic<int64_t> lastTurnNs_{
      0};  // steady clock; 0 before the loop's first turn  // generation + 1, so that 0 means "never synced"
};

}  // namespace nftpol::controller
