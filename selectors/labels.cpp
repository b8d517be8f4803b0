#include "nftpol/selectors/labels.h"

#include <algorithm>

namespace nftpol::selectors {

Labels::Labels(std::vector<std::pair<std::string, std::string>> items) {
  for (auto& item : items)
    set(std::move(item.first), std::move(item.second));
}

const std::string* Labels::find(std::string_view key) const {
  // Pods carry a handful of labels: a scan that compares lengths first touches fewer bytes than a search.
  if (items_.size() <= 8) {
    for (const auto& [k, v] : items_)
      if (k.size() == key.size() && k == key) return &v;
    return nullptr;
  }
  auto it = std::lower_bound(items_.begin(), items_.end(), key,
                             [](const auto& item, std::string_view k) { return item.first < k; });
  return it != items_.end() && it->first == key ? &it->second : nullptr;
}

void Labels::set(std::string key, std::string value) {
  auto it = std::lower_bound(items_.begin(), items_.end(), key,
                             [](const auto& item, const std::string& k) { return item.first < k; });
  if (it != items_.end() && it->first == key) {
    it->second = std::move(value);
  } else {
    items_.emplace(it, std::move(key), std::move(value));
  }
}

std::string Labels::toString() const {
  std::string out;
  for (const auto& [k, v] : items_) {
    if (!out.empty()) out += ',';
    out += k + '=' + v;
  }
  return out;
}

namespace {

bool isAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool isLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?
bool isQualifiedNamePart(std::string_view s) {
  if (s.empty() || !isAlnum(s.front()) || !isAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return isAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// [a-z0-9]([-a-z0-9]*[a-z0-9])?
bool isDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63 || !isLowerAlnum(s.front()) || !isLowerAlnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return isLowerAlnum(c) || c == '-'; });
}

}  // namespace

std::optional<std::string> validateDnsLabel(std::string_view name) {
  if (isDnsLabel(name)) return std::nullopt;
  return "invalid name \"" + std::string(name) +
         "\" (must be at most 63 lowercase alphanumeric characters or '-', starting and ending with an "
         "alphanumeric character)";
}

std::optional<std::string> validateDnsSubdomain(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 253;
  for (size_t start = 0; ok && start <= name.size();) {
    auto dot = name.find('.', start);
    auto part = name.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    ok = isDnsLabel(part);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (ok) return std::nullopt;
  return "invalid name \"" + std::string(name) +
         "\" (must be at most 253 lowercase alphanumeric characters, '-' or '.', starting and ending with an "
         "alphanumeric character)";
}

std::optional<std::string> validateLabelKey(std::string_view key) {
  auto slash = key.find('/');
  std::string_view name = key;
  if (slash != std::string_view::npos) {
    auto prefix = key.substr(0, slash);
    name = key.substr(slash + 1);
    if (prefix.empty() || validateDnsSubdomain(prefix))
      return "invalid label key \"" + std::string(key) +
             "\": the prefix must be a DNS subdomain (lowercase alphanumeric, '-' or '.', at most 253 "
             "characters)";
  }
  if (name.empty() || name.size() > 63 || !isQualifiedNamePart(name))
    return "invalid label key \"" + std::string(key) +
           "\": the name part must be 1-63 characters of alphanumerics, '-', '_' or '.', starting and ending "
           "with an alphanumeric character (an optional DNS subdomain prefix and '/' may precede it)";
  return std::nullopt;
}

std::optional<std::string> validateLabelValue(std::string_view value) {
  if (value.empty() || (value.size() <= 63 && isQualifiedNamePart(value))) return std::nullopt;
  return "invalid label value \"" + std::string(value) +
         "\": must be empty or 1-63 characters of alphanumerics, '-', '_' or '.', starting and ending with "
         "an "
         "alphanumeric character";
}

}  // namespace nftpol::selectors
