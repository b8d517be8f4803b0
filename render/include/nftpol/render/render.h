#pragma once

// From the model to nftables: a node's `table inet nftpol`, as a pure function of (model, node). Pods on
// the node are dispatched by verdict maps keyed by their addresses into per-direction chains; pods whose
// allowed sets are equal share a chain. Peers from the whole cluster live in named sets, services in the NAT
// part. Every name derives from content (a short hash plus a readable namespace/name), so the same objects
// always render the same table, whatever order they came in.

#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>

#include "nftpol/nft/ruleset.h"
#include "nftpol/policy/model.h"
#include "nftpol/render/flow_log.h"

namespace nftpol::render {

// Names derive from content through an 80-bit hash; two different contents under one name would silently
// share one set or chain, so the renderer checks that a name already taken stands for the same content and
// throws this when it does not. It cannot happen by chance (about 2^-40 at a million names) and never passes
// silently.
struct NameCollision : std::logic_error {
  using std::logic_error::logic_error;
};

// The table of one node, kept up to date from what the model reports dirty: a change re-renders only the
// chains of the local pods it touched, the sets of the peers it touched and the services it touched. There is
// one way to render: a full render is a NodeTable's first update, so the incremental table and a fresh one
// are equal by construction (tests check it on random change sequences).
class NodeTable {
 public:
  explicit NodeTable(std::string node, std::optional<FlowLogOptions> flowLog = std::nullopt);
  ~NodeTable();
  NodeTable(NodeTable&&) noexcept;
  NodeTable& operator=(NodeTable&&) noexcept;

  // Brings the table up to date with `model`: everything the first time, then what `dirty` names. Throws
  // NameCollision, after which the NodeTable must be replaced.
  const nft::Table& update(const policy::Model& model, const policy::Dirty& dirty);
  const nft::Table& table() const;
  // The names of the table's sets, maps and chains that updates changed, made or removed since the last
  // call; nullopt when it may all have changed (an update made the table whole: the first, or one that
  // changed services). What a backend's applyChanged is told.
  std::optional<std::set<std::string>> takeChanges();
  // This node's pod subnets (its Node's spec.podCIDRs, --pod-cidr, what the CNI plugin reported): an address
  // in them that no local pod holds is closed both ways. Taken by the next update.
  void setPodSubnets(std::vector<Cidr> subnets);

  const std::string& node() const;
  size_t localPods() const;  // pods on this node that take part

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// A fresh NodeTable's table for `model`. Throws NameCollision.
nft::Table render(const policy::Model& model, const std::string& node, std::vector<Cidr> podSubnets = {},
                  std::optional<FlowLogOptions> flowLog = std::nullopt);

}  // namespace nftpol::render
