#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nftpol/controller/address_book.h"
#include "nftpol/controller/cni_server.h"
#include "nftpol/controller/flow_log.h"
#include "nftpol/controller/flow_reader.h"
#include "nftpol/controller/metrics.h"
#include "nftpol/controller/node_routes.h"
#include "nftpol/controller/reconcile.h"
#include "nftpol/controller/revoker.h"
#include "nftpol/controller/source.h"
#include "nftpol/nft/backend.h"
#include "nftpol/nft/conntrack.h"

namespace nftpol::controller {

struct ControllerOptions {
  std::string node;
  bool once = false;
  std::string listen = "127.0.0.1:9402";  // empty: no HTTP endpoint
  bool revokeConntrack = true;            // mark the established flows a change denies, so that they stop
  bool nodeRoutes = true;                 // route the other nodes' pod subnets via their InternalIPs
  std::vector<Cidr> podCidrs;             // this node's pod subnets, besides its Node object's (--pod-cidr)
  int stopFd = -1;                        // readable once the process is asked to stop (StopSignal::fd())
  // The CNI handoff (--cni-socket): where nftpol-bridge hands each new pod over before it runs. Empty: none.
  std::string cniSocket = cni::handoff::kDefaultSocket;
  // How long an ADD whose pod object has not arrived waits for it before the answer says "pending" (the pod
  // then stays closed until it arrives); at most the plugin's own wait, less a margin for the answer.
  std::chrono::milliseconds pendingWait{3000};
  // The flow log: the kernel's log rules (none: off), the file of records (empty: /flows only, as a JSON
  // line each, rotated at flowLogMaxBytes into flowLogKeep older files), and how often aggregates are
  // attributed and written.
  std::optional<render::FlowLogOptions> flowLog;
  std::string flowLogPath;
  uint64_t flowLogMaxBytes = 64ull << 20;
  int flowLogKeep = 3;
  std::chrono::milliseconds flowFlush{5000};
};

// Enforces the objects of a source (a manifests directory, the Kubernetes API) for one node: reconciles at
// start, then on every change. A failed sync is logged, counted and retried with backoff; the process never
// exits because of one. A stop (StopSignal: SIGTERM, SIGINT) ends it and leaves the rules in place, so
// enforcement survives a restart.
class Controller {
 public:
  Controller(ControllerOptions options, std::unique_ptr<Source> source,
             std::unique_ptr<nft::Backend> backend);
  int run();  // the process exit status
  const Metrics& metrics() const { return metrics_; }

 private:
  bool syncOnce(bool& firstSyncBlocked);
  bool syncRoutes();
  // The objects as this node enforces them: the source's, with the pods the address book overlays.
  const policy::ClusterState& enforced() const { return cni_ ? effective_ : source_->state(); }
  void derive(const policy::ObjectRef& ref);
  void noteBookChange(const BookChange& change);
  bool takeHandoffs();  // true when a request needs a sync
  void answerHandoffs(bool committed);
  std::optional<std::chrono::steady_clock::time_point> nextHandoffDeadline() const;
  Source::Wake waitForWork(std::chrono::milliseconds timeout);
  void flushFlows();
  bool closedUntilNow(const cni::handoff::Request& add) const;
  struct Waiting {
    CniServer::Incoming incoming;
    std::chrono::steady_clock::time_point deadline;
    bool committed = false;  // a commit since it was taken holds what it asked for
  };
  ControllerOptions options_;
  std::unique_ptr<Source> source_;
  std::unique_ptr<nft::Backend> backend_;
  Reconciler reconciler_;
  // When each change taken but not yet committed arrived, for nftpol_event_to_commit_seconds.
  std::vector<std::chrono::steady_clock::time_point> uncommitted_;
  bool loaded_ = false;  // the reconciler has taken every object once; after that, only their changes
  std::optional<std::vector<GatewayRoute>> routes_;  // what the kernel was last made to hold; none: read it
  Metrics metrics_;
  std::unique_ptr<CniServer> cni_;
  AddressBook book_;
  policy::ClusterState effective_;        // enforced() with a CNI server
  std::vector<std::string> bookDirty_;    // pods the book changed since the last sync
  std::vector<IpAddress> bookAddresses_;  // and the addresses: every source pod claiming one is redone
  std::vector<Waiting> waiting_;
  // Whether the changes since the last commit may deny a connection that is established: all but a new pod's
  // first addresses and a DEL (see takeHandoffs). Without it the revoker's conntrack dump, which walks the
  // host's whole table, would run beside every pod's ADD and DEL.
  bool revocationOwed_ = true;
  std::vector<Cidr> committedSubnets_;  // the pod subnets the last commit closed
  std::string lastFailure_;             // why the last sync failed, for a handoff refused at its deadline
  // The flow log. The attribution model is rebuilt from enforced() when a sync changed it since (it points
  // into that state, so it is never used after a change without a rebuild).
  FlowCollector flows_;
  FlowFeed feed_;
  std::unique_ptr<FlowFile> flowFile_;
  std::chrono::steady_clock::time_point nextFlush_;
  uint64_t modelVersion_ = 0, flowModelVersion_ = 0;
  // The log rules' counter when the reader started, its later readings, and what the rate limits held back
  // since (see flushFlows).
  std::optional<uint64_t> offeredAtStart_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> offered_;
  uint64_t rateLimited_ = 0;
  std::unique_ptr<policy::Compiled> flowModel_;
  // For would-deny records: the same objects with the policies in audit mode counted as enforced.
  std::unique_ptr<policy::ClusterState> flowAuditState_;
  std::unique_ptr<policy::Compiled> flowAuditModel_;
  ServiceIndex flowServices_;
  std::unique_ptr<FlowReader> flowReader_;  // after what it feeds: it stops before them
  nft::Conntrack conntrack_;                // forgets a deleted pod's connections (the revoker has its own)
  std::unique_ptr<Revoker> revoker_;  // none with --no-conntrack-revoke; declared last, so it stops first
};

}  // namespace nftpol::controller
