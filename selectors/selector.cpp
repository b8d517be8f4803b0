#include "nftpol/selectors/selector.h"

#include <algorithm>
#include <tuple>

namespace nftpol::selectors {

Result<LabelSelector> LabelSelector::create(std::vector<Requirement> requirements) {
  for (auto& r : requirements) {
    bool needsValues = r.op == Operator::kIn || r.op == Operator::kNotIn;
    if (needsValues && r.values.empty())
      return Error{"operator In and NotIn need at least one value (key \"" + r.key + "\")"};
    if (!needsValues && !r.values.empty())
      return Error{"operator Exists and DoesNotExist take no values (key \"" + r.key + "\")"};
    std::sort(r.values.begin(), r.values.end());
    r.values.erase(std::unique(r.values.begin(), r.values.end()), r.values.end());
  }
  std::sort(requirements.begin(), requirements.end(), [](const Requirement& a, const Requirement& b) {
    return std::tie(a.key, a.op, a.values) < std::tie(b.key, b.op, b.values);
  });
  requirements.erase(std::unique(requirements.begin(), requirements.end()), requirements.end());
  LabelSelector s;
  s.requirements_ = std::move(requirements);
  return s;
}

bool LabelSelector::matches(const Labels& labels) const {
  for (const auto& r : requirements_) {
    const std::string* v = labels.find(r.key);
    switch (r.op) {
      case Operator::kIn:
        if (!v) return false;
        if (r.values.size() == 1 ? *v != r.values[0]
                                 : !std::binary_search(r.values.begin(), r.values.end(), *v))
          return false;
        break;
      case Operator::kNotIn:
        if (v && std::binary_search(r.values.begin(), r.values.end(), *v)) return false;
        break;
      case Operator::kExists:
        if (!v) return false;
        break;
      case Operator::kDoesNotExist:
        if (v) return false;
        break;
    }
  }
  return true;
}

std::string LabelSelector::toString() const {
  std::string out;
  for (const auto& r : requirements_) {
    if (!out.empty()) out += ',';
    auto list = [&] {
      std::string s = "(";
      for (size_t i = 0; i < r.values.size(); ++i)
        s += (i ? "," : "") + r.values[i];
      return s + ")";
    };
    switch (r.op) {
      case Operator::kIn:
        out += r.values.size() == 1 ? r.key + "=" + r.values[0] : r.key + " in " + list();
        break;
      case Operator::kNotIn:
        out += r.values.size() == 1 ? r.key + "!=" + r.values[0] : r.key + " notin " + list();
        break;
      case Operator::kExists:
        out += r.key;
        break;
      case Operator::kDoesNotExist:
        out += "!" + r.key;
        break;
    }
  }
  return out;
}

}  // namespace nftpol::selectors
