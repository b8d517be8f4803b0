#include "nftpol/policy/cluster.h"

#include <algorithm>
#include <functional>

namespace nftpol::policy {

std::string Diagnostic::toString() const {
  std::string out = where.toString() + ": ";
  if (severity == Severity::kWarning) out += "warning: ";
  if (!object.empty()) out += object + ": ";
  if (!field.empty()) out += field + ": ";
  return out + message;
}

bool hasErrors(const std::vector<Diagnostic>& diagnostics) {
  return std::any_of(diagnostics.begin(), diagnostics.end(),
                     [](const Diagnostic& d) { return d.severity == Severity::kError; });
}

Labels namespaceLabels(const std::string& name, Labels labels) {
  labels.set("kubernetes.io/metadata.name", name);
  return labels;
}

namespace {

template <typename T>
void upsertInto(std::vector<T>& items, std::unordered_map<std::string, size_t>& index, std::string key,
                T item) {
  auto [it, inserted] = index.try_emplace(std::move(key), items.size());
  if (inserted) {
    items.push_back(std::move(item));
  } else {
    items[it->second] = std::move(item);
  }
}

template <typename T>
bool removeFrom(std::vector<T>& items, std::unordered_map<std::string, size_t>& index, const std::string& key,
                const std::function<std::string(const T&)>& keyOf) {
  auto it = index.find(key);
  if (it == index.end()) return false;
  size_t at = it->second;
  index.erase(it);
  if (at != items.size() - 1) {  // keep the vector dense: move the last item into the hole
    items[at] = std::move(items.back());
    index[keyOf(items[at])] = at;
  }
  items.pop_back();
  return true;
}

}  // namespace

bool ClusterState::remove(const std::string& kind, const std::string& key) {
  if (kind == "Namespace")
    return removeFrom<Namespace>(namespaces_, namespaceIndex_, key, [](const auto& n) { return n.name; });
  if (kind == "Pod") return removeFrom<Pod>(pods_, podIndex_, key, [](const auto& p) { return p.key(); });
  if (kind == "NetworkPolicy")
    return removeFrom<NetworkPolicy>(policies_, policyIndex_, key, [](const auto& p) { return p.key(); });
  return removeFrom<OtherObject>(others_, otherIndex_, kind + "/" + key,
                                 [](const auto& o) { return o.kind + "/" + o.ns + "/" + o.name; });
}

void ClusterState::upsert(Namespace ns) {
  ns.labels = namespaceLabels(ns.name, std::move(ns.labels));
  auto key = ns.name;
  upsertInto(namespaces_, namespaceIndex_, std::move(key), std::move(ns));
}

// Keys are computed before the call: argument evaluation order would otherwise let the move happen first.
void ClusterState::upsert(Pod pod) {
  auto key = pod.key();
  upsertInto(pods_, podIndex_, std::move(key), std::move(pod));
}

void ClusterState::upsert(NetworkPolicy policy) {
  auto key = policy.key();
  upsertInto(policies_, policyIndex_, std::move(key), std::move(policy));
}

void ClusterState::upsert(OtherObject other) {
  auto key = other.kind + "/" + other.ns + "/" + other.name;
  upsertInto(others_, otherIndex_, std::move(key), std::move(other));
}

void ClusterState::absorb(ClusterState&& other) {
  for (auto& n : other.namespaces_)
    upsert(std::move(n));
  for (auto& p : other.pods_)
    upsert(std::move(p));
  for (auto& p : other.policies_)
    upsert(std::move(p));
  for (auto& o : other.others_)
    upsert(std::move(o));
  other = ClusterState();
}

std::vector<Diagnostic> ClusterState::implyMissingNamespaces() {
  std::vector<Diagnostic> warnings;
  auto imply = [&](const std::string& name, const SourceLocation& where, const std::string& object) {
    if (namespaceIndex_.count(name)) return;
    upsert(Namespace{.name = name, .labels = {}, .where = where, .implied = true});
    warnings.push_back(Diagnostic{
        .severity = Severity::kWarning,
        .where = where,
        .object = object,
        .field = "metadata.namespace",
        .message =
            "namespace \"" + name +
            "\" has no Namespace object; assuming one labelled only kubernetes.io/metadata.name=" + name});
  };
  for (const auto& p : pods_)
    imply(p.ns, p.where, "Pod " + p.key());
  for (const auto& p : policies_)
    imply(p.ns, p.where, "NetworkPolicy " + p.key());
  return warnings;
}

std::vector<ObjectRef> ClusterState::refs() const {
  std::vector<ObjectRef> out;
  out.reserve(namespaces_.size() + pods_.size() + policies_.size() + others_.size());
  for (const auto& n : namespaces_)
    out.push_back({"Namespace", n.name});
  for (const auto& p : pods_)
    out.push_back({"Pod", p.key()});
  for (const auto& p : policies_)
    out.push_back({"NetworkPolicy", p.key()});
  for (const auto& o : others_)
    out.push_back({o.kind, o.ns + "/" + o.name});
  return out;
}

void ClusterState::copyFrom(const ClusterState& from, const ObjectRef& ref) {
  auto copy = [&](const auto& items, const auto& index, const std::string& key) {
    auto it = index.find(key);
    if (it == index.end()) {
      remove(ref.kind, ref.key);
    } else {
      upsert(items[it->second]);
    }
  };
  if (ref.kind == "Namespace") {
    copy(from.namespaces_, from.namespaceIndex_, ref.key);
  } else if (ref.kind == "Pod") {
    copy(from.pods_, from.podIndex_, ref.key);
  } else if (ref.kind == "NetworkPolicy") {
    copy(from.policies_, from.policyIndex_, ref.key);
  } else {
    copy(from.others_, from.otherIndex_, ref.kind + "/" + ref.key);
  }
}

const Namespace* ClusterState::findNamespace(const std::string& name) const {
  auto it = namespaceIndex_.find(name);
  return it == namespaceIndex_.end() ? nullptr : &namespaces_[it->second];
}

const Pod* ClusterState::findPod(const std::string& ns, const std::string& name) const {
  auto it = podIndex_.find(ns + "/" + name);
  return it == podIndex_.end() ? nullptr : &pods_[it->second];
}

const NetworkPolicy* ClusterState::findPolicy(const std::string& ns, const std::string& name) const {
  auto it = policyIndex_.find(ns + "/" + name);
  return it == policyIndex_.end() ? nullptr : &policies_[it->second];
}

}  // namespace nftpol::policy
