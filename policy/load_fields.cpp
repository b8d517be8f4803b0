#include "load_fields.h"

#include <algorithm>
#include <charconv>

namespace nftpol::policy::load {

using selectors::Operator;
using selectors::Requirement;

std::string join(const std::string& path, std::string_view field) {
  return path.empty() ? std::string(field) : path + "." + std::string(field);
}
std::string indexed(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

// The API server treats a null field like an absent one.
std::optional<yaml::Node> child(const yaml::Node& map, std::string_view key) {
  if (!map.isMap()) return std::nullopt;
  for (size_t i = 0; i < map.size(); ++i) {
    if (map.key(i).isScalar() && map.key(i).scalar() == key) {
      if (map.value(i).isNull()) return std::nullopt;
      return map.value(i);
    }
  }
  return std::nullopt;
}

// Strict field validation, as `kubectl apply` does by default: a misspelt `namespaceSelector` must not
// silently widen a policy.
void rejectUnknownFields(Context& cx, const yaml::Node& map, const std::string& path,
                         std::initializer_list<std::string_view> known) {
  if (!map.isMap()) return;
  for (size_t i = 0; i < map.size(); ++i) {
    std::string key = map.key(i).isScalar() ? map.key(i).scalar() : "<non-scalar key>";
    if (std::find(known.begin(), known.end(), key) == known.end())
      cx.error(map.key(i), path, "unknown field \"" + key + "\"");
  }
}

bool expectMap(Context& cx, const yaml::Node& node, const std::string& path) {
  if (node.isMap()) return true;
  cx.error(node, path, "must be a map");
  return false;
}
bool expectSequence(Context& cx, const yaml::Node& node, const std::string& path) {
  if (node.isSequence()) return true;
  cx.error(node, path, "must be a list");
  return false;
}

namespace {

// A YAML plain scalar like 1, true or 1.5 is not a string to the API server (sigs.k8s.io/yaml, YAML 1.1).
bool isPlainNonString(const yaml::Node& node) {
  if (!node.isPlain()) return false;
  const std::string& s = node.scalar();
  static constexpr std::string_view kWords[] = {"true", "false", "yes", "no", "on", "off",
                                                "True", "False", "Yes", "No", "On", "Off",
                                                "TRUE", "FALSE", "YES", "NO", "ON", "OFF"};
  if (s.size() >= 2 && s.size() <= 5 &&
      std::find(std::begin(kWords), std::end(kWords), s) != std::end(kWords))
    return true;
  // go-yaml's resolver: integers [-+]?[0-9]+ and floats [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  auto digits = [&] {
    size_t from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9')
      ++i;
    return i - from;
  };
  size_t before = digits();
  size_t after = 0;
  if (i < s.size() && s[i] == '.') {
    ++i;
    after = digits();
  }
  if (before == 0 && after == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

}  // namespace

std::optional<std::string> stringField(Context& cx, const yaml::Node& node, const std::string& path) {
  if (!node.isScalar()) {
    cx.error(node, path, "must be a string");
    return std::nullopt;
  }
  if (isPlainNonString(node)) {
    cx.error(node, path, "must be a string (quote \"" + node.scalar() + "\")");
    return std::nullopt;
  }
  return node.scalar();
}

bool isPlainInteger(const yaml::Node& node) {
  if (!node.isScalar() || !node.isPlain()) return false;
  const std::string& s = node.scalar();
  size_t i = (!s.empty() && (s[0] == '-' || s[0] == '+')) ? 1 : 0;
  return i < s.size() && std::all_of(s.begin() + i, s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<long long> intField(Context& cx, const yaml::Node& node, const std::string& path) {
  if (!isPlainInteger(node)) {
    cx.error(node, path, "must be an integer");
    return std::nullopt;
  }
  const std::string& s = node.scalar();
  long long v = 0;
  const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
  auto [end, ec] = std::from_chars(begin, s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    cx.error(node, path, "integer \"" + s + "\" is out of range");
    return std::nullopt;
  }
  return v;
}

std::optional<bool> boolField(Context& cx, const yaml::Node& node, const std::string& path) {
  if (node.isScalar()) {
    const std::string& s = node.scalar();
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  cx.error(node, path, "must be true or false");
  return std::nullopt;
}

std::optional<uint16_t> portNumber(Context& cx, const yaml::Node& node, const std::string& path) {
  auto v = intField(cx, node, path);
  if (!v) return std::nullopt;
  if (*v < 1 || *v > 65535) {
    cx.error(node, path, std::to_string(*v) + " is not a valid port number (must be between 1 and 65535)");
    return std::nullopt;
  }
  return static_cast<uint16_t>(*v);
}

// IANA_SVC_NAME: 1-15 characters of [a-z0-9-], at least one letter, no leading, trailing or double '-'.
bool isValidPortName(std::string_view s) {
  if (s.empty() || s.size() > 15 || s.front() == '-' || s.back() == '-' ||
      s.find("--") != std::string_view::npos)
    return false;
  bool letter = false;
  for (char c : s) {
    if (c >= 'a' && c <= 'z') {
      letter = true;
    } else if (!(c >= '0' && c <= '9') && c != '-') {
      return false;
    }
  }
  return letter;
}
const char* kPortNameRule =
    "must be a port number or an IANA service name (1-15 lowercase alphanumerics or '-', with at least one "
    "letter, not starting, ending or doubling '-')";

std::optional<Protocol> protocolField(Context& cx, const yaml::Node& node, const std::string& path) {
  auto s = stringField(cx, node, path);
  if (!s) return std::nullopt;
  auto p = parseProtocol(*s);
  if (!p) cx.error(node, path, "unsupported value \"" + *s + "\" (must be TCP, UDP or SCTP)");
  return p;
}

Labels labelsField(Context& cx, const yaml::Node& node, const std::string& path) {
  std::vector<std::pair<std::string, std::string>> items;
  if (!expectMap(cx, node, path)) return {};
  for (size_t i = 0; i < node.size(); ++i) {
    yaml::Node keyNode = node.key(i), valueNode = node.value(i);
    auto key = stringField(cx, keyNode, path);
    if (!key) continue;
    if (auto bad = selectors::validateLabelKey(*key)) {
      cx.error(keyNode, path, *bad);
      continue;
    }
    std::string fieldPath = path + "[" + *key + "]";
    std::string value;
    if (!valueNode.isNull()) {
      auto v = stringField(cx, valueNode, fieldPath);
      if (!v) continue;
      value = *v;
    }
    if (auto bad = selectors::validateLabelValue(value)) {
      cx.error(valueNode, fieldPath, *bad);
      continue;
    }
    items.emplace_back(*key, value);
  }
  return Labels(std::move(items));
}

std::optional<LabelSelector> selectorField(Context& cx, const yaml::Node& node, const std::string& path) {
  if (!expectMap(cx, node, path)) return std::nullopt;
  rejectUnknownFields(cx, node, path, {"matchLabels", "matchExpressions"});
  int before = cx.errors();
  std::vector<Requirement> reqs;
  if (auto ml = child(node, "matchLabels")) {
    Labels labels = labelsField(cx, *ml, join(path, "matchLabels"));
    for (const auto& [k, v] : labels.items())
      reqs.push_back({k, Operator::kIn, {v}});
  }
  if (auto me = child(node, "matchExpressions")) {
    std::string mePath = join(path, "matchExpressions");
    if (expectSequence(cx, *me, mePath)) {
      for (size_t i = 0; i < me->size(); ++i) {
        yaml::Node e = (*me)[i];
        std::string ePath = indexed(mePath, i);
        if (!expectMap(cx, e, ePath)) continue;
        rejectUnknownFields(cx, e, ePath, {"key", "operator", "values"});
        Requirement r;
        auto key = child(e, "key");
        if (!key) {
          cx.error(e, join(ePath, "key"), "required");
        } else if (auto k = stringField(cx, *key, join(ePath, "key"))) {
          if (auto bad = selectors::validateLabelKey(*k)) cx.error(*key, join(ePath, "key"), *bad);
          r.key = *k;
        }
        auto op = child(e, "operator");
        std::optional<std::string> opText;
        if (!op) {
          cx.error(e, join(ePath, "operator"), "required");
        } else {
          opText = stringField(cx, *op, join(ePath, "operator"));
        }
        if (opText) {
          if (*opText == "In") {
            r.op = Operator::kIn;
          } else if (*opText == "NotIn") {
            r.op = Operator::kNotIn;
          } else if (*opText == "Exists") {
            r.op = Operator::kExists;
          } else if (*opText == "DoesNotExist") {
            r.op = Operator::kDoesNotExist;
          } else {
            cx.error(*op, join(ePath, "operator"),
                     "unsupported value \"" + *opText + "\" (must be In, NotIn, Exists or DoesNotExist)");
            opText.reset();
          }
        }
        auto values = child(e, "values");
        std::string vPath = join(ePath, "values");
        if (values && expectSequence(cx, *values, vPath)) {
          for (size_t j = 0; j < values->size(); ++j) {
            yaml::Node v = (*values)[j];
            if (auto s = stringField(cx, v, indexed(vPath, j))) {
              if (auto bad = selectors::validateLabelValue(*s)) cx.error(v, indexed(vPath, j), *bad);
              r.values.push_back(*s);
            }
          }
        }
        if (opText) {
          bool needsValues = r.op == Operator::kIn || r.op == Operator::kNotIn;
          bool hasValues = values && values->isSequence() && values->size() > 0;
          if (needsValues && !hasValues)
            cx.error(values ? *values : e, vPath, "must be specified when operator is In or NotIn");
          if (!needsValues && hasValues)
            cx.error(*values, vPath, "may not be specified when operator is Exists or DoesNotExist");
        }
        reqs.push_back(std::move(r));
      }
    }
  }
  if (cx.errors() != before) return std::nullopt;
  auto selector = LabelSelector::create(std::move(reqs));
  if (!selector) {
    cx.error(node, path, selector.error().message);
    return std::nullopt;
  }
  return *selector;
}

std::optional<Meta> metadataField(Context& cx, const yaml::Node& object, const std::string& kind,
                                  bool namespaced, const std::string& defaultNamespace) {
  auto md = child(object, "metadata");
  if (!md) {
    cx.nameObject(kind);
    cx.error(object, "metadata", "required");
    return std::nullopt;
  }
  if (!expectMap(cx, *md, "metadata")) return std::nullopt;
  Meta meta;
  auto name = child(*md, "name");
  if (name) {
    if (auto s = stringField(cx, *name, "metadata.name")) meta.name = *s;
  }
  if (namespaced) {
    meta.ns = defaultNamespace;
    if (auto ns = child(*md, "namespace")) {
      if (auto s = stringField(cx, *ns, "metadata.namespace")) meta.ns = *s;
    }
    cx.nameObject(kind + " " + meta.ns + "/" + meta.name);
  } else {
    cx.nameObject(kind + " " + meta.name);
  }
  if (!name) {
    cx.error(*md, "metadata.name", "required");
  } else if (auto bad = kind == "Namespace" ? selectors::validateDnsLabel(meta.name)
                                            : selectors::validateDnsSubdomain(meta.name)) {
    cx.error(*name, "metadata.name", *bad);
  }
  if (namespaced) {
    if (auto bad = selectors::validateDnsLabel(meta.ns)) {
      auto ns = child(*md, "namespace");
      cx.error(ns ? *ns : *md, "metadata.namespace", *bad);
    }
  }
  if (auto labels = child(*md, "labels")) meta.labels = labelsField(cx, *labels, "metadata.labels");
  return meta;
}

}  // namespace nftpol::policy::load
