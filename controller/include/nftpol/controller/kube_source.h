#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nftpol/controller/api_client.h"
#include "nftpol/controller/source.h"
#include "nftpol/controller/watched_resources.h"

namespace nftpol::controller {

struct KubeSourceOptions {
  std::string server;  // for logs
  size_t pageSize = 500;
  int watchTimeoutSeconds = 300;  // asked of the server, which ends the watch near it; it is then resumed
  std::chrono::milliseconds minBackoff{100}, maxBackoff{30000};
  // Events closer than `settle` are taken together, for at most `maxSettle`: under a steady stream of changes
  // that bounds the time to enforce (a reconcile of 10k pods costs ~7 ms, so five a second are cheap).
  std::chrono::milliseconds settle{10}, maxSettle{50};
  // How often a custom resource the cluster does not have is looked for again (a CRD installed later).
  std::chrono::milliseconds missingRecheck{60000};
};

// The Kubernetes API as a source: for each watched resource a thread lists it (in pages) and then watches it
// from the list's resourceVersion, with bookmarks. A watch that ends is resumed from the last
// resourceVersion; 410 Gone, an ERROR event or a line that is not an event starts over with a list, whose
// result replaces that kind's objects in one take (so enforcement has no gap: the old objects hold until the
// new list is whole); other failures retry with exponential backoff and jitter. Objects are kept as the
// engine's objects, not as JSON, so memory follows the cluster's size, not its objects'.
class KubeSource final : public Source {
 public:
  // `connect` makes one client per resource (each holds its own connection).
  KubeSource(std::function<std::unique_ptr<ApiClient>()> connect, KubeSourceOptions options);
  ~KubeSource() override;

  std::optional<Error> start() override;
  Change take() override;
  const policy::ClusterState& state() const override { return state_; }
  size_t generation() const override { return generation_; }
  bool complete() const override;
  std::chrono::seconds completionWait() const override { return std::chrono::seconds{30}; }
  Wake wait(std::chrono::milliseconds timeout, Interrupts interrupts) override;
  std::string describe() const override { return "api=" + options_.server; }

  // What arrived from the server, queued for take(). Public for the reflectors, which run on their threads.
  struct Arrival {
    const WatchedResource* resource;
    enum class Kind { kListed, kUpsert, kDelete } kind;
    std::vector<std::string> json;                     // kListed: the pages; otherwise the one object
    std::chrono::steady_clock::time_point received{};  // set by arrive()
  };
  void arrive(Arrival arrival);
  void listed(const WatchedResource& resource);  // counts towards complete()

 private:
  void takeList(const Arrival& a, Change& change);
  void takeObject(const Arrival& a, Change& change);

  std::function<std::unique_ptr<ApiClient>()> connect_;
  KubeSourceOptions options_;
  policy::ClusterState state_;
  size_t generation_ = 0;

  mutable std::mutex mu_;
  std::deque<Arrival> queue_;
  std::vector<const WatchedResource*> listedOnce_;
  int wakeFd_ = -1;  // an eventfd: something was queued

  std::atomic<bool> stopping_{false};
  std::condition_variable stopCv_;  // interrupts the reflectors' backoff sleeps
  std::vector<std::unique_ptr<ApiClient>> clients_;
  std::vector<std::thread> threads_;
};

}  // namespace nftpol::controller
