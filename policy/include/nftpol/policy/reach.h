#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nftpol/policy/compiled.h"

namespace nftpol::policy {

// One end of a connection: a pod that takes part in NetworkPolicy, or an address outside the cluster.
struct Endpoint {
  std::optional<PodId> pod;
  // Set for outside addresses, and for a pod named by one of its addresses, which fixes the connection's
  // family. A pod named as namespace/pod uses its own address of each family.
  std::optional<IpAddress> address;

  static Endpoint ofPod(PodId id) { return Endpoint{id, std::nullopt}; }
  static Endpoint ofAddress(const IpAddress& ip) { return Endpoint{std::nullopt, ip}; }
};

// Resolves "namespace/pod" or an IP address (a pod's address resolves to that pod). Says why when it cannot:
// unknown pod, pod without an address, host-network or finished pod.
Result<Endpoint> resolveEndpoint(const Compiled& compiled, const std::string& text);

// A rule that admits the connection: which peer entry matched (-1: the rule has no peers, so all match) and
// which port entry (kAllPorts: the rule lists no ports).
struct RuleHit {
  uint32_t rule;  // into Compiled::rules()
  int peer;
  int port;
};

// The first rule of a tier (in its policies' evaluation order, then the rules' written order) that matches
// the connection.
struct TierHit {
  uint32_t policy;  // into Compiled::clusterPolicies()
  uint32_t rule;    // position in its ingress or egress
  // What the rule does to it: its action, except that a Deny or Pass rule with a peer this version cannot
  // read denies everything (fails closed).
  Action action;
  int peer;  // which from/to entry matched
  int port;  // which protocols/ports entry (kAllPorts: the rule lists none)
};

// Which tier's answer a side's verdict is.
enum class DecidedBy : uint8_t {
  kDefault,        // nothing isolates the pod and no cluster policy rule matched (or every match passed)
  kAdmin,          // an Admin tier rule accepted or denied it
  kNetworkPolicy,  // NetworkPolicy isolates the pod in this direction: its answer is final
  kBaseline,       // a Baseline tier rule accepted or denied it
};

std::string_view toString(DecidedBy d);  // "admin", "networkpolicy", "baseline", "default"

// The verdict of one side: the source pod's egress, or the destination pod's ingress. Tiers in order: Admin,
// NetworkPolicy, Baseline, default.
struct SideVerdict {
  bool applies = false;          // false when that end is outside the cluster: no policy of ours governs it
  std::optional<TierHit> admin;  // the Admin tier's first match (a Pass hands on to NetworkPolicy)
  std::vector<uint32_t> isolating;  // policies selecting the pod for this direction
  std::vector<RuleHit> hits;        // every rule that admits the connection
  std::optional<TierHit> baseline;  // the Baseline tier's first match, consulted when nothing above decided
  DecidedBy decidedBy = DecidedBy::kDefault;
  bool allowed = true;
};

enum class Because : uint8_t { kPolicies, kSelf, kNoCommonFamily };

struct Verdict {
  bool allowed = false;
  Because because = Because::kPolicies;
  std::optional<Family> family;
  std::optional<IpAddress> source, destination;
  SideVerdict egress, ingress;
};

struct ReachQuery {
  Endpoint from;
  Endpoint to;
  Protocol protocol = Protocol::kTCP;
  uint16_t port = 0;
};

// One verdict per address family the two ends share (one for single-stack clusters). The connection is
// allowed when any of them is: a dual-stack client may use either family.
std::vector<Verdict> canReach(const Compiled& compiled, const ReachQuery& query);
bool anyAllowed(const std::vector<Verdict>& verdicts);

}  // namespace nftpol::policy
