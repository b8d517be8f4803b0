#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "nftpol/controller/interrupts.h"
#include "nftpol/policy/cluster.h"
#include "nftpol/result.h"

namespace nftpol::controller {

// Where the controller's objects come from: a manifests directory on one machine, the Kubernetes API in a
// cluster. One interface, so that both take the same reconcile path.
class Source {
 public:
  virtual ~Source() = default;

  // Begins following changes (a watch, a list); the controller calls it once before waiting.
  virtual std::optional<Error> start() = 0;

  struct Change {
    std::vector<policy::ObjectRef> objects;       // the objects that may differ since the last take, sorted
    std::vector<policy::Diagnostic> diagnostics;  // about what arrived
    size_t rejected = 0;  // inputs refused as a whole (a broken file); their last valid objects stay
    // When each change taken here arrived (a watch event, a list): the time to enforce is measured from it.
    std::vector<std::chrono::steady_clock::time_point> arrivals;
  };
  // What arrived since the last call, taken into state().
  virtual Change take() = 0;

  // All valid objects, as of the last take().
  virtual const policy::ClusterState& state() const = 0;
  // Counts the changes of state(); what /readyz reports once the kernel holds it.
  virtual size_t generation() const = 0;
  // Whether state() is whole enough to enforce: every file valid, every kind listed. Enforcing a partial
  // state could open traffic that an earlier run closed, so the first sync waits for it; later ones do not.
  virtual bool complete() const = 0;

  // How long a one-shot run may wait for complete(): a directory is what it is at once, the API's lists take
  // a moment.
  virtual std::chrono::seconds completionWait() const { return std::chrono::seconds{0}; }

  enum class Wake { kChanged, kTimeout, kStop, kHandoff };
  // Blocks until something arrived and settled, the timeout passed or one of `interrupts` became readable
  // (a handoff also cuts a settling burst short: a pod's ADD waits for nothing).
  virtual Wake wait(std::chrono::milliseconds timeout, Interrupts interrupts) = 0;

  // For logs: "manifests=DIR", "api=https://...".
  virtual std::string describe() const = 0;
};

}  // namespace nftpol::controller
