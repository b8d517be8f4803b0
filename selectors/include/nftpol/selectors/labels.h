#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace nftpol::selectors {

// Labels sorted by key, unique keys. A flat vector: pods carry a handful of labels and there are many pods.
class Labels {
 public:
  Labels() = default;
  // Later duplicates of a key replace earlier ones, as in a YAML/JSON map that the API server would reject.
  explicit Labels(std::vector<std::pair<std::string, std::string>> items);

  const std::string* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  void set(std::string key, std::string value);
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
  bool empty() const { return items_.empty(); }
  std::string toString() const;  // "a=1,b=2"

  bool operator==(const Labels&) const = default;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

// The API server's rules (k8s.io/apimachinery/pkg/util/validation). nullopt when valid, else what is allowed.
std::optional<std::string> validateLabelKey(std::string_view key);
std::optional<std::string> validateLabelValue(std::string_view value);
std::optional<std::string> validateDnsLabel(std::string_view name);      // RFC 1123 label, e.g. namespaces
std::optional<std::string> validateDnsSubdomain(std::string_view name);  // RFC 1123 subdomain, e.g. policies

}  // namespace nftpol::selectors
