#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nftpol/nft/backend.h"
#include "nftpol/policy/cluster.h"
#include "nftpol/policy/model.h"
#include "nftpol/render/render.h"

namespace nftpol::controller {

struct ReconcileResult {
  size_t messages = 0;  // netlink messages sent; 0 when the kernel already held the desired table
  size_t pods = 0;      // pods on this node that take part
  size_t policies = 0;
  size_t elements = 0;  // set and map elements in the desired table
};

// Keeps the model and the node's table as objects change, and applies the table through a backend in one
// transaction. A change costs what it touches: the model reports what it dirtied, the table re-renders that.
class Reconciler {
 public:
  Reconciler(std::string node, nft::Backend& backend,
             std::optional<render::FlowLogOptions> flowLog = std::nullopt)
      : flowLog_(flowLog), table_(std::move(node), flowLog), backend_(backend) {}

  // Takes every object of `state` (the first time, or to start over).
  void load(const policy::ClusterState& state);
  // Takes the current version in `state` of each named object (gone when `state` has none).
  void update(const policy::ClusterState& state, const std::vector<policy::ObjectRef>& changed);

  // This node's pod subnets: addresses in them that no local pod holds are closed. Taken by the next update.
  void setPodSubnets(std::vector<Cidr> subnets);

  Result<ReconcileResult> apply();
  const nft::Table& table() const { return table_.table(); }  // what apply() sends
  const policy::Model& model() const { return model_; }

 private:
  policy::Model model_;
  std::optional<render::FlowLogOptions> flowLog_;
  render::NodeTable table_;
  std::vector<Cidr> podSubnets_;
  nft::Backend& backend_;
};

}  // namespace nftpol::controller
