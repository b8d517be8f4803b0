#pragma once

#include <cstddef>

#include "nftpol/nft/ruleset.h"
#include "nftpol/result.h"

namespace nftpol::nft {

struct Revoked {
  size_t checked = 0;  // TCP, UDP and SCTP entries looked at
  size_t deleted = 0;
};

// Deletes the conntrack entries of this network namespace whose original direction `table` would no longer
// admit as a new connection, so that established flows a policy change denies stop at their next packet
// (which then arrives as new and meets the policy). Judged by the packet tracer over the same table the
// kernel holds.
Result<Revoked> revokeDenied(const Table& table);

}  // namespace nftpol::nft
