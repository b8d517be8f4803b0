#pragma once

#include <cstddef>
#include <optional>
#include <vector>

#include "nftpol/netlink.h"
#include "nftpol/nft/ruleset.h"
#include "nftpol/result.h"

namespace nftpol::nft {

// The conntrack mark bit of a connection a policy change denies. Filter-forward drops (TCP: resets) every
// packet of a connection that carries it, in both directions, before it accepts established traffic.
// Revoking by deleting the entry instead would race the other end: a reply in flight when the entry goes is
// picked up mid-stream as a new connection opened by the replier, which the policy may well allow, and the
// revoked connection lives on as that connection's replies.
constexpr uint32_t kRevokedConnectionMark = 0x00010000;

struct Revoked {
  size_t checked = 0;   // TCP, UDP and SCTP entries looked at
  size_t revoked = 0;   // newly marked: the table denies their original direction
  size_t restored = 0;  // unmarked: revoked before, admitted again by this table
};

// A ctnetlink socket kept for the life of its owner, opened at the first call and again after a call that
// failed (the socket may still hold that exchange's replies). Never one per call: the kernel answers the
// release of any NETLINK_NETFILTER socket by taking nf_tables' commit mutex and waiting there for the last
// commit's objects to be freed after an RCU grace period (nft_rcv_nl_event), and every commit of the table
// waits behind it; on a busy node that was seconds. Not thread-safe: one per thread that needs it.
class Conntrack {
 public:
  // Brings the revoked mark of every conntrack entry of this network namespace in line with `table`: set
  // where the table would no longer admit the entry's original direction as a new connection, cleared where
  // it would again. Judged by the packet tracer over the same table the kernel holds; the mark is changed in
  // place (CTA_MARK_MASK), so the other bits of a connection's mark are left as they are.
  Result<Revoked> revokeDenied(const Table& table);

  // Deletes every conntrack entry of this network namespace that has one of `addresses` at either end, in
  // either direction: the connections of a pod that is gone. Nothing can take them up mid-stream for the
  // pod that gets the address next, as it could for a revoked one (see above): its address is closed until
  // that pod's policies hold, and then they judge whatever arrives. Returns how many went.
  Result<size_t> forgetConnections(const std::vector<IpAddress>& addresses);

  // The open socket's netlink port; 0 when none is open.
  uint32_t portid() const { return nl_ ? nl_->portid() : 0; }

 private:
  Result<Netlink*> socket();

  std::optional<Netlink> nl_;
};

}  // namespace nftpol::nft
