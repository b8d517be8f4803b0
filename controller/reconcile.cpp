#include "nftpol/controller/reconcile.h"

namespace nftpol::controller {

void Reconciler::load(const policy::ClusterState& state) {
  model_ = policy::Model::of(state);
  table_ = render::NodeTable(table_.node(), flowLog_);
  table_.setPodSubnets(podSubnets_);
  table_.update(model_, model_.takeDirty());
}

void Reconciler::update(const policy::ClusterState& state, const std::vector<policy::ObjectRef>& changed) {
  for (const auto& ref : changed)
    model_.take(state, ref);
  table_.update(model_, model_.takeDirty());
}

void Reconciler::setPodSubnets(std::vector<Cidr> subnets) {
  podSubnets_ = subnets;
  table_.setPodSubnets(std::move(subnets));
}

Result<ReconcileResult> Reconciler::apply() {
  const nft::Table& desired = table_.table();
  auto changes = table_.takeChanges();
  auto applied = changes ? backend_.applyChanged(desired, *changes) : backend_.apply(desired);
  if (!applied) return applied.error();
  ReconcileResult r{
      .messages = applied->messages, .pods = table_.localPods(), .policies = model_.policies().size()};
  for (const auto& s : desired.sets)
    r.elements += s.elements.size();
  for (const auto& m : desired.maps)
    r.elements += m.verdicts.size();
  return r;
}

}  // namespace nftpol::controller
