#pragma once

#include <string>
#include <vector>

#include "nftpol/nft/backend.h"
#include "nftpol/policy/cluster.h"

namespace nftpol::controller {

struct ReconcileResult {
  size_t messages = 0;  // netlink messages sent; 0 when the kernel already held the desired table
  size_t pods = 0;      // pods on this node that take part
  size_t policies = 0;
  size_t elements = 0;  // set and map elements in the desired table
  nft::Table table;      // what the kernel now holds
};

// One reconcile: the desired table for `node`, rendered from `state`, applied through `backend` in one
// transaction.
Result<ReconcileResult> reconcile(const policy::ClusterState& state, const std::string& node,
                                  nft::Backend& backend);

}  // namespace nftpol::controller
