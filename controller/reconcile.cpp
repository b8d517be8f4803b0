#include "nftpol/controller/reconcile.h"

#include "nftpol/nft/render.h"

namespace nftpol::controller {

Result<ReconcileResult> reconcile(const policy::ClusterState& state, const std::string& node,
                                  nft::Backend& backend) {
  policy::Compiled compiled = policy::Compiled::build(state);
  nft::Table desired = nft::render(compiled, node);
  auto applied = backend.apply(desired);
  if (!applied) return applied.error();
  ReconcileResult r{.messages = applied->messages, .policies = compiled.policies().size()};
  for (const auto* p : compiled.pods())
    r.pods += p->nodeName == node;
  for (const auto& s : desired.sets)
    r.elements += s.isMap ? s.verdicts.size() : s.elements.size();
  r.table = std::move(desired);
  return r;
}

}  // namespace nftpol::controller
