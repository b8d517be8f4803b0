#include "nftpol/policy/cluster.h"

#include <algorithm>
#include <functional>
#include <type_traits>

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

// The key an object of `ref.kind` is stored under: OtherObjects share one store, so theirs includes the kind.
std::string storeKey(const ObjectRef& ref, bool other) {
  return other ? ref.kind + "/" + ref.key : ref.key;
}

}  // namespace

bool ClusterState::remove(const std::string& kind, const std::string& key) {
  return std::apply(
      [&](auto&... store) {
        bool found = false, known = false;
        auto tryOne = [&](auto& s) {
          using T = typename std::decay_t<decltype(s.items())>::value_type;
          if constexpr (!std::is_same_v<T, OtherObject>) {
            if (kind != T::kKind) return;
            known = true;
            found = s.remove(key);
          }
        };
        (tryOne(store), ...);
        if (!known) found = std::get<Store<OtherObject>>(stores_).remove(storeKey({kind, key}, true));
        return found;
      },
      stores_);
}

void ClusterState::upsert(Namespace ns) {
  ns.labels = namespaceLabels(ns.name, std::move(ns.labels));
  std::get<Store<Namespace>>(stores_).upsert(std::move(ns));
}

void ClusterState::absorb(ClusterState&& other) {
  std::apply(
      [&](auto&... store) {
        auto moveAll = [&](auto& s) {
          for (auto& item : s.release())
            upsert(std::move(item));
        };
        (moveAll(store), ...);
      },
      other.stores_);
  other = ClusterState();
}

std::vector<Diagnostic> ClusterState::implyMissingNamespaces() {
  std::vector<Diagnostic> warnings;
  auto imply = [&](const std::string& name, const SourceLocation& where, const std::string& object) {
    if (findNamespace(name)) return;
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
  for (const auto& p : pods())
    imply(p.ns, p.where, "Pod " + p.key());
  for (const auto& p : policies())
    imply(p.ns, p.where, "NetworkPolicy " + p.key());
  return warnings;
}

std::vector<ObjectRef> ClusterState::refs() const {
  std::vector<ObjectRef> out;
  std::apply(
      [&](const auto&... store) {
        auto add = [&](const auto& s) {
          for (const auto& item : s.items()) {
            using T = std::decay_t<decltype(item)>;
            if constexpr (std::is_same_v<T, OtherObject>) {
              out.push_back({item.kind, item.ns + "/" + item.name});
            } else {
              out.push_back({std::string(T::kKind), item.key()});
            }
          }
        };
        (add(store), ...);
      },
      stores_);
  return out;
}

void ClusterState::copyFrom(const ClusterState& from, const ObjectRef& ref) {
  bool done = false;
  std::apply(
      [&](const auto&... store) {
        auto copyOne = [&](const auto& s) {
          using T = typename std::decay_t<decltype(s.items())>::value_type;
          if constexpr (!std::is_same_v<T, OtherObject>) {
            if (done || ref.kind != T::kKind) return;
            done = true;
            if (const T* item = s.find(ref.key)) {
              upsert(*item);
            } else {
              remove(ref.kind, ref.key);
            }
          }
        };
        (copyOne(store), ...);
      },
      from.stores_);
  if (done) return;
  if (const OtherObject* item = std::get<Store<OtherObject>>(from.stores_).find(storeKey(ref, true))) {
    upsert(*item);
  } else {
    remove(ref.kind, ref.key);
  }
}

}  // namespace nftpol::policy
