#pragma once

#include <string>
#include <vector>

#include "nftpol/nft/backend.h"
#include "nftpol/nft/incremental_render.h"
#include "nftpol/policy/cluster.h"

namespace nftpol::controller {

struct ReconcileResult {
  size_t messages = 0;  // netlink messages sent; 0 when the kernel already held the desired table
  size_t pods = 0;      // pods on this node that take part
  size_t policies = 0;
  size_t elements = 0;  // set and map elements in the desired table
};

// Keeps the desired table for one node as objects change, and applies it through a backend in one
// transaction. The table is kept by an IncrementalRenderer, so a change costs what it touches.
class Reconciler {
 public:
  Reconciler(std::string node, nft::Backend& backend) : renderer_(std::move(node)), backend_(backend) {}

  // Takes every object of `state` (the first time, or to start over).
  void load(const policy::ClusterState& state);
  // Takes the current version in `state` of each named object (gone when `state` has none).
  void update(const policy::ClusterState& state, const std::vector<policy::ObjectRef>& changed);

  Result<ReconcileResult> apply();
  const nft::Table& table() { return renderer_.table(); }  // what apply() sends

 private:
  void take(const policy::ClusterState& state, const policy::ObjectRef& ref);
  nft::IncrementalRenderer renderer_;
  nft::Backend& backend_;
};

}  // namespace nftpol::controller
