#pragma once

#include <array>
#include <atomic>
#include <mutex>
#include <string>

namespace nftpol::controller {

// The controller's metrics, rendered in the Prometheus text exposition format. Updated by the reconcile loop,
// read by the HTTP thread.
class Metrics {
 public:
  void reconciled(double seconds, size_t messages, size_t pods, size_t policies, size_t elements,
                  size_t generation);
  void reconcileFailed();
  void manifestErrors(size_t files);
  void revoked(size_t connections);

  bool ready() const { return syncedGeneration_.load() > 0; }
  size_t syncedGeneration() const { return syncedGeneration_.load() - 1; }  // valid once ready()
  std::string prometheus() const;

 private:
  static constexpr std::array<double, 10> kBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05,  0.1,    0.25,  0.5,  1.0};
  mutable std::mutex mu_;
  std::array<uint64_t, kBuckets.size()> bucketCounts_{};
  uint64_t reconciles_ = 0, errors_ = 0, manifestErrors_ = 0, messages_ = 0, revoked_ = 0;
  double durationSum_ = 0, lastSyncUnix_ = 0;
  size_t pods_ = 0, policies_ = 0, elements_ = 0;
  std::atomic<size_t> syncedGeneration_{0};  // generation + 1, so that 0 means "never synced"
};

}  // namespace nftpol::controller
