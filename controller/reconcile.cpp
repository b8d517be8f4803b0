#include "nftpol/controller/reconcile.h"

namespace nftpol::controller {

void Reconciler::take(const policy::ClusterState& state, const policy::ObjectRef& ref) {
  if (ref.kind == "Namespace") {
    renderer_.setNamespace(ref.key, state.findNamespace(ref.key));
    return;
  }
  auto slash = ref.key.find('/');
  if (slash == std::string::npos) return;
  std::string ns = ref.key.substr(0, slash), name = ref.key.substr(slash + 1);
  if (ref.kind == "Pod") {
    renderer_.setPod(ref.key, state.findPod(ns, name));
  } else if (ref.kind == "NetworkPolicy") {
    renderer_.setPolicy(ref.key, state.findPolicy(ns, name));
  } else if (ref.kind == "Service") {
    renderer_.setService(ref.key, state.findService(ns, name));
  } else if (ref.kind == "EndpointSlice") {
    renderer_.setEndpointSlice(ref.key, state.findEndpointSlice(ns, name));
  }
}

void Reconciler::load(const policy::ClusterState& state) {
  renderer_ = nft::IncrementalRenderer(renderer_.node());
  // Namespaces and pods before policies: each new peer is then resolved once, over pods already known.
  for (const auto& n : state.namespaces())
    renderer_.setNamespace(n.name, &n);
  for (const auto& p : state.pods())
    renderer_.setPod(p.key(), &p);
  for (const auto& p : state.policies())
    renderer_.setPolicy(p.key(), &p);
  for (const auto& s : state.services())
    renderer_.setService(s.key(), &s);
  for (const auto& s : state.endpointSlices())
    renderer_.setEndpointSlice(s.key(), &s);
}

void Reconciler::update(const policy::ClusterState& state, const std::vector<policy::ObjectRef>& changed) {
  for (const auto& ref : changed)
    take(state, ref);
}

Result<ReconcileResult> Reconciler::apply() {
  const nft::Table& desired = renderer_.table();
  auto applied = backend_.apply(desired);
  if (!applied) return applied.error();
  ReconcileResult r{
      .messages = applied->messages, .pods = renderer_.localPods(), .policies = renderer_.policies()};
  for (const auto& s : desired.sets)
    r.elements += s.isMap ? s.verdicts.size() : s.elements.size();
  return r;
}

}  // namespace nftpol::controller
