#pragma once

#include <compare>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "nftpol/policy/objects.h"

namespace nftpol::policy {

enum class Severity : uint8_t { kError, kWarning };

// A problem found in the input, located as precisely as the file allows.
struct Diagnostic {
  Severity severity = Severity::kError;
  SourceLocation where;
  std::string object;  // "NetworkPolicy ns/name", empty when the problem is not inside an object
  std::string field;   // "spec.ingress[0].from[1]", empty for the object or the document as a whole
  std::string message;

  // "file:line:column: kind ns/name: field.path: message"; warnings say "warning:" after the location.
  std::string toString() const;
};

bool hasErrors(const std::vector<Diagnostic>& diagnostics);

// Names one object of a ClusterState: kind "Namespace" with key "name", a namespaced kind with key
// "namespace/name", or kind "ClusterNetworkPolicy" with its key ("cnp/name", "anp/name", "banp/name").
struct ObjectRef {
  std::string kind;
  std::string key;
  auto operator<=>(const ObjectRef&) const = default;
};

// Objects of one kind, in arrival order, found by key ("namespace/name", or the name of a cluster-scoped
// object). Removal keeps the vector dense by moving the last object into the hole.
template <typename T>
class Store {
 public:
  void upsert(T item) {
    auto key = item.key();  // before the move
    auto [it, inserted] = index_.try_emplace(std::move(key), items_.size());
    if (inserted) {
      items_.push_back(std::move(item));
    } else {
      items_[it->second] = std::move(item);
    }
  }
  bool remove(const std::string& key) {
    auto it = index_.find(key);
    if (it == index_.end()) return false;
    size_t at = it->second;
    index_.erase(it);
    if (at != items_.size() - 1) {
      items_[at] = std::move(items_.back());
      index_[items_[at].key()] = at;
    }
    items_.pop_back();
    return true;
  }
  const T* find(const std::string& key) const {
    auto it = index_.find(key);
    return it == index_.end() ? nullptr : &items_[it->second];
  }
  const std::vector<T>& items() const { return items_; }
  // Every object, moved out; the store is left empty.
  std::vector<T> release() {
    index_.clear();
    std::vector<T> out;
    out.swap(items_);
    return out;
  }

 private:
  std::vector<T> items_;
  std::unordered_map<std::string, size_t> index_;
};

// Every object that was loaded and passed validation. Upserts replace an object of the same kind, namespace
// and name, which is how --what-if overlays and, later, watch events apply.
class ClusterState {
 public:
  void upsert(Namespace ns);  // adds the kubernetes.io/metadata.name label
  void upsert(Pod pod) { std::get<Store<Pod>>(stores_).upsert(std::move(pod)); }
  void upsert(NetworkPolicy policy) { std::get<Store<NetworkPolicy>>(stores_).upsert(std::move(policy)); }
  void upsert(Service service) { std::get<Store<Service>>(stores_).upsert(std::move(service)); }
  void upsert(EndpointSlice slice) { std::get<Store<EndpointSlice>>(stores_).upsert(std::move(slice)); }
  void upsert(Node node) { std::get<Store<Node>>(stores_).upsert(std::move(node)); }
  void upsert(ClusterNetworkPolicy policy) {
    std::get<Store<ClusterNetworkPolicy>>(stores_).upsert(std::move(policy));
  }
  void upsert(OtherObject other) { std::get<Store<OtherObject>>(stores_).upsert(std::move(other)); }
  // Removes the object of that kind; false when there was none. Namespaced kinds take "namespace/name",
  // cluster-scoped ones (Namespace, Node) the name, cluster policies their key.
  bool remove(const std::string& kind, const std::string& key);
  // Upserts every object of `other`, in its order.
  void absorb(ClusterState&& other);

  // Namespaces that pods or policies name but that were not loaded are implied (with only their
  // kubernetes.io/metadata.name label), and each gets a warning located at the first object that named it.
  std::vector<Diagnostic> implyMissingNamespaces();

  const std::vector<Namespace>& namespaces() const { return items<Namespace>(); }
  const std::vector<Pod>& pods() const { return items<Pod>(); }
  const std::vector<NetworkPolicy>& policies() const { return items<NetworkPolicy>(); }
  const std::vector<Service>& services() const { return items<Service>(); }
  const std::vector<EndpointSlice>& endpointSlices() const { return items<EndpointSlice>(); }
  const std::vector<Node>& nodes() const { return items<Node>(); }
  // ClusterNetworkPolicies and the v1alpha1 kinds, keyed "cnp/name", "anp/name", "banp/name".
  const std::vector<ClusterNetworkPolicy>& clusterPolicies() const { return items<ClusterNetworkPolicy>(); }
  const std::vector<OtherObject>& others() const { return items<OtherObject>(); }

  // Every object, named.
  std::vector<ObjectRef> refs() const;
  // Copies the object named by `ref` from `from` into this state, or removes it here when `from` has none.
  void copyFrom(const ClusterState& from, const ObjectRef& ref);

  const Namespace* findNamespace(const std::string& name) const {
    return std::get<Store<Namespace>>(stores_).find(name);
  }
  const Pod* findPod(const std::string& ns, const std::string& name) const {
    return std::get<Store<Pod>>(stores_).find(ns + "/" + name);
  }
  const NetworkPolicy* findPolicy(const std::string& ns, const std::string& name) const {
    return std::get<Store<NetworkPolicy>>(stores_).find(ns + "/" + name);
  }
  const EndpointSlice* findEndpointSlice(const std::string& ns, const std::string& name) const {
    return std::get<Store<EndpointSlice>>(stores_).find(ns + "/" + name);
  }
  const Node* findNode(const std::string& name) const { return std::get<Store<Node>>(stores_).find(name); }
  const ClusterNetworkPolicy* findClusterPolicy(const std::string& key) const {
    return std::get<Store<ClusterNetworkPolicy>>(stores_).find(key);
  }
  const Service* findService(const std::string& ns, const std::string& name) const {
    return std::get<Store<Service>>(stores_).find(ns + "/" + name);
  }

 private:
  template <typename T>
  const std::vector<T>& items() const {
    return std::get<Store<T>>(stores_).items();
  }
  std::tuple<Store<Namespace>, Store<Pod>, Store<NetworkPolicy>, Store<Service>, Store<EndpointSlice>,
             Store<Node>, Store<ClusterNetworkPolicy>, Store<OtherObject>>
      stores_;
};

Labels namespaceLabels(const std::string& name, Labels labels);  // adds kubernetes.io/metadata.name

}  // namespace nftpol::policy
