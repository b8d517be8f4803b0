#pragma once

// What the loader of every kind shares: the context that collects an object's diagnostics and locates YAML
// nodes in the original file, and the readers of fields (strings, integers, ports, labels, selectors,
// metadata) that report what is wrong at `file:line:column`. Internal to policy/.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nftpol/policy/cluster.h"
#include "yaml_tree.h"

namespace nftpol::policy::load {

// Collects the diagnostics of one object and knows how to locate a YAML node in the original file.
class Context {
 public:
  Context(std::shared_ptr<const std::string> file, int lineOffset, std::vector<Diagnostic>& out)
      : file_(std::move(file)), lineOffset_(lineOffset), out_(out) {}

  SourceLocation at(const yaml::Node& node) const {
    // The tree's marks count from 0, and a node made up for a missing field has none; fall back to the
    // object's own start.
    if (!node.isDefined()) return start_;
    auto mark = node.mark();
    if (mark.line < 0) return start_;
    return SourceLocation{file_, mark.line + 1 + lineOffset_, mark.column + 1};
  }
  void beginObject(const yaml::Node& node) {
    start_ = SourceLocation{file_, lineOffset_ + 1, 1};
    start_ = at(node);
    object_.clear();
    errors_ = 0;
  }
  void nameObject(std::string object) { object_ = std::move(object); }
  void error(const yaml::Node& node, std::string field, std::string message) {
    ++errors_;
    out_.push_back({Severity::kError, at(node), object_, std::move(field), std::move(message)});
  }
  void warn(const yaml::Node& node, std::string field, std::string message) {
    out_.push_back({Severity::kWarning, at(node), object_, std::move(field), std::move(message)});
  }
  int errors() const { return errors_; }
  const SourceLocation& start() const { return start_; }
  std::shared_ptr<const std::string> file() const { return file_; }
  int lineOffset() const { return lineOffset_; }

 private:
  std::shared_ptr<const std::string> file_;
  int lineOffset_;
  std::vector<Diagnostic>& out_;
  SourceLocation start_;
  std::string object_;
  int errors_ = 0;
};

std::string join(const std::string& path, std::string_view field);  // "spec" + "ports" -> "spec.ports"
std::string indexed(const std::string& path, size_t i);             // "spec.ports" + 2 -> "spec.ports[2]"
std::optional<yaml::Node> child(const yaml::Node& map, std::string_view key);
void rejectUnknownFields(Context& cx, const yaml::Node& map, const std::string& path,
                         std::initializer_list<std::string_view> known);
bool expectMap(Context& cx, const yaml::Node& node, const std::string& path);
bool expectSequence(Context& cx, const yaml::Node& node, const std::string& path);
std::optional<std::string> stringField(Context& cx, const yaml::Node& node, const std::string& path);
bool isPlainInteger(const yaml::Node& node);  // an unquoted integer: a number to the API server, not a string
std::optional<long long> intField(Context& cx, const yaml::Node& node, const std::string& path);
std::optional<bool> boolField(Context& cx, const yaml::Node& node, const std::string& path);
std::optional<uint16_t> portNumber(Context& cx, const yaml::Node& node, const std::string& path);
bool isValidPortName(std::string_view s);
extern const char* kPortNameRule;
std::optional<Protocol> protocolField(Context& cx, const yaml::Node& node, const std::string& path);
Labels labelsField(Context& cx, const yaml::Node& node, const std::string& path);
std::optional<LabelSelector> selectorField(Context& cx, const yaml::Node& node, const std::string& path);

struct Meta {
  std::string name;
  std::string ns;
  Labels labels;
};
std::optional<Meta> metadataField(Context& cx, const yaml::Node& object, const std::string& kind,
                                  bool namespaced, const std::string& defaultNamespace);

// The kinds loaded outside loader.cpp: services.
void loadService(Context& cx, const yaml::Node& object, ClusterState& state);
void loadEndpointSlice(Context& cx, const yaml::Node& object, ClusterState& state);
void loadNode(Context& cx, const yaml::Node& object, ClusterState& state);
// ClusterNetworkPolicy, AdminNetworkPolicy and BaselineAdminNetworkPolicy (load_cluster_policies.cpp).
void loadClusterPolicy(Context& cx, const yaml::Node& object, ClusterState& state, ClusterPolicyKind kind);

}  // namespace nftpol::policy::load
