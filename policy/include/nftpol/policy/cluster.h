#pragma once

#include <compare>
#include <string>
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

// Names one object of a ClusterState: kind "Namespace" with key "name", or a namespaced kind with key
// "namespace/name".
struct ObjectRef {
  std::string kind;
  std::string key;
  auto operator<=>(const ObjectRef&) const = default;
};

// Every object that was loaded and passed validation. Upserts replace an object of the same kind, namespace
// and name, which is how --what-if overlays and, later, watch events apply.
class ClusterState {
 public:
  void upsert(Namespace ns);
  void upsert(Pod pod);
  void upsert(NetworkPolicy policy);
  void upsert(OtherObject other);
  // Removes the object of that kind ("Namespace", "Pod", "NetworkPolicy" or another kept kind); false when
  // there was none. Namespaced kinds take "namespace/name", Namespace takes the name.
  bool remove(const std::string& kind, const std::string& key);
  // Upserts every object of `other`, in its order.
  void absorb(ClusterState&& other);

  // Namespaces that pods or policies name but that were not loaded are implied (with only their
  // kubernetes.io/metadata.name label), and each gets a warning located at the first object that named it.
  std::vector<Diagnostic> implyMissingNamespaces();

  const std::vector<Namespace>& namespaces() const { return namespaces_; }
  const std::vector<Pod>& pods() const { return pods_; }
  const std::vector<NetworkPolicy>& policies() const { return policies_; }
  const std::vector<OtherObject>& others() const { return others_; }

  // Every object, named.
  std::vector<ObjectRef> refs() const;
  // Copies the object named by `ref` from `from` into this state, or removes it here when `from` has none.
  void copyFrom(const ClusterState& from, const ObjectRef& ref);

  const Namespace* findNamespace(const std::string& name) const;
  const Pod* findPod(const std::string& ns, const std::string& name) const;
  const NetworkPolicy* findPolicy(const std::string& ns, const std::string& name) const;

 private:
  std::vector<Namespace> namespaces_;
  std::vector<Pod> pods_;
  std::vector<NetworkPolicy> policies_;
  std::vector<OtherObject> others_;
  std::unordered_map<std::string, size_t> namespaceIndex_, podIndex_, policyIndex_, otherIndex_;
};

Labels namespaceLabels(const std::string& name, Labels labels);  // adds kubernetes.io/metadata.name

}  // namespace nftpol::policy
