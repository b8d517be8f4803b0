#pragma once

#include <string>
#include <vector>

#include "nftpol/result.h"
#include "nftpol/selectors/labels.h"

namespace nftpol::selectors {

enum class Operator { kIn, kNotIn, kExists, kDoesNotExist };

struct Requirement {
  std::string key;
  Operator op = Operator::kIn;
  std::vector<std::string> values;  // sorted and unique once inside a LabelSelector

  bool operator==(const Requirement&) const = default;
};

// A metav1.LabelSelector: matchLabels become `In` requirements with one value, and all requirements are
// AND-ed. Only valid selectors exist: create() checks the operator/values rules; keys and values are checked
// by the loader, which knows where they stand in the file.
class LabelSelector {
 public:
  LabelSelector() = default;  // the empty selector, which matches everything
  static Result<LabelSelector> create(std::vector<Requirement> requirements);

  bool matches(const Labels& labels) const;
  bool matchesEverything() const { return requirements_.empty(); }
  const std::vector<Requirement>& requirements() const { return requirements_; }

  // The Kubernetes string form ("app=web,tier in (a,b),!legacy"); "{}" style callers print "<all>" for empty.
  // Canonical: requirements are sorted, so equal selectors print equally and can be interned by this string.
  std::string toString() const;

  bool operator==(const LabelSelector&) const = default;

 private:
  std::vector<Requirement> requirements_;
};

}  // namespace nftpol::selectors
