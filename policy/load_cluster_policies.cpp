// ClusterNetworkPolicy (policy.networking.k8s.io/v1alpha2) and the v1alpha1 AdminNetworkPolicy and
// BaselineAdminNetworkPolicy, validated as their CRDs' schemas and CEL rules validate them and read into one
// form: an ANP is an Admin tier policy, the BANP a Baseline one after every Baseline CNP, and Allow is
// Accept.

#include <re2/re2.h>

#include <algorithm>

#include "load_fields.h"

namespace nftpol::policy::load {
namespace {

// What differs between the three kinds' schemas.
struct Schema {
  ClusterPolicyKind kind;
  std::string_view kindName;
  size_t maxRules;  // per direction
  size_t maxPeers;  // per rule
  size_t maxPorts;
  const char* portsField;  // "protocols" (v1alpha2) or "ports" (v1alpha1)
  const char* accept;      // the spelling of Accept: "Accept" or "Allow"
  bool pass;               // whether Pass is an action
  bool domainNames;        // whether egress peers may name domains
};

constexpr Schema kCnp{ClusterPolicyKind::kClusterNetworkPolicy,
                      "ClusterNetworkPolicy",
                      25,
                      25,
                      25,
                      "protocols",
                      "Accept",
                      true,
                      true};
constexpr Schema kAnp{ClusterPolicyKind::kAdminNetworkPolicy,
                      "AdminNetworkPolicy",
                      100,
                      100,
                      100,
                      "ports",
                      "Allow",
                      true,
                      false};
constexpr Schema kBanp{ClusterPolicyKind::kBaselineAdminNetworkPolicy,
                       "BaselineAdminNetworkPolicy",
                       100,
                       100,
                       100,
                       "ports",
                       "Allow",
                       false,
                       false};

// The CRD's own pattern for a DomainName (network-policy-api v0.2.0).
const RE2& domainNamePattern() {
  static const RE2 pattern(
      R"(^(\*\.)?([a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.)+[a-zA-Z0-9]([-a-zA-Z0-9_]*[a-zA-Z0-9])?\.?$)");
  return pattern;
}

// A list the schema bounds: a sequence of min..max items.
bool boundedSequence(Context& cx, const yaml::Node& node, const std::string& path, size_t min, size_t max) {
  if (!expectSequence(cx, node, path)) return false;
  if (node.size() < min) {
    cx.error(node, path, "must have at least " + std::to_string(min) + " item" + (min == 1 ? "" : "s"));
    return false;
  }
  if (node.size() > max) {
    cx.error(node, path, "must have at most " + std::to_string(max) + " items");
    return false;
  }
  return true;
}

// The one field a map with exactly one of `fields` sets (the schema's minProperties/maxProperties 1). A map
// that sets none of them but other fields is a newer CRD's, which the caller may fail closed on: nullopt with
// `unknown` filled. Anything else is an error.
std::optional<std::string> oneOf(Context& cx, const yaml::Node& node, const std::string& path,
                                 std::initializer_list<std::string_view> fields,
                                 std::vector<std::string>* unknown) {
  if (!expectMap(cx, node, path)) return std::nullopt;
  std::vector<std::string> set, others;
  for (size_t i = 0; i < node.size(); ++i) {
    std::string key = node.key(i).isScalar() ? node.key(i).scalar() : "<non-scalar key>";
    if (std::find(fields.begin(), fields.end(), key) != fields.end())
      set.push_back(key);
    else
      others.push_back(key);
  }
  std::string names;
  for (auto f : fields)
    names += (names.empty() ? "" : ", ") + std::string(f);
  if (set.empty() && !others.empty() && unknown) {
    *unknown = std::move(others);
    return std::nullopt;
  }
  if (set.size() != 1 || !others.empty()) {
    rejectUnknownFields(cx, node, path, fields);
    if (set.size() != 1) cx.error(node, path, "must set exactly one of " + names);
    return std::nullopt;
  }
  return set.front();
}

// `pods: {namespaceSelector, podSelector}` (podSelector required; an absent namespaceSelector selects every
// namespace) or `namespaces: <selector>`, as a SelectorPeer with its namespaceSelector set.
std::optional<SelectorPeer> selectorPeer(Context& cx, const yaml::Node& node, const std::string& path,
                                         const std::string& field) {
  std::string fPath = join(path, field);
  if (field == "namespaces") {
    auto ns = selectorField(cx, node, fPath);
    if (!ns) return std::nullopt;
    return SelectorPeer{.podSelector = std::nullopt, .namespaceSelector = std::move(*ns)};
  }
  if (!expectMap(cx, node, fPath)) return std::nullopt;
  rejectUnknownFields(cx, node, fPath, {"namespaceSelector", "podSelector"});
  int before = cx.errors();
  SelectorPeer peer{.podSelector = std::nullopt, .namespaceSelector = LabelSelector{}};
  if (auto n = child(node, "namespaceSelector")) {
    if (auto s = selectorField(cx, *n, join(fPath, "namespaceSelector")))
      peer.namespaceSelector = std::move(*s);
  }
  if (auto p = child(node, "podSelector")) {
    peer.podSelector = selectorField(cx, *p, join(fPath, "podSelector"));
  } else {
    cx.error(node, join(fPath, "podSelector"), "required");
  }
  if (cx.errors() != before) return std::nullopt;
  return peer;
}

std::optional<ClusterPeer> loadPeer(Context& cx, const Schema& schema, Direction d, const yaml::Node& node,
                                    const std::string& path) {
  std::vector<std::string> unknown;
  std::optional<std::string> field;
  if (d == Direction::kIngress)
    field = oneOf(cx, node, path, {"namespaces", "pods"}, &unknown);
  else if (schema.domainNames)
    field = oneOf(cx, node, path, {"namespaces", "pods", "nodes", "networks", "domainNames"}, &unknown);
  else
    field = oneOf(cx, node, path, {"namespaces", "pods", "nodes", "networks"}, &unknown);
  if (!field) {
    if (unknown.empty()) return std::nullopt;
    std::string names;
    for (const auto& u : unknown)
      names += (names.empty() ? "" : ", ") + u;
    cx.warn(
        node, path,
        "sets no peer field this version knows (" + names +
            "): it fails closed (an Accept rule matches nothing through it, a Deny or Pass rule denies all)");
    return ClusterPeer{UnknownPeer{std::move(unknown)}};
  }
  yaml::Node value = *child(node, *field);
  std::string fPath = join(path, *field);
  if (*field == "namespaces" || *field == "pods") {
    auto peer = selectorPeer(cx, value, path, *field);
    if (!peer) return std::nullopt;
    return ClusterPeer{std::move(*peer)};
  }
  if (*field == "nodes") {
    auto s = selectorField(cx, value, fPath);
    if (!s) return std::nullopt;
    return ClusterPeer{NodesPeer{std::move(*s)}};
  }
  if (!boundedSequence(cx, value, fPath, 1, 25)) return std::nullopt;
  int before = cx.errors();
  if (*field == "networks") {
    NetworksPeer networks;
    for (size_t i = 0; i < value.size(); ++i) {
      std::string iPath = indexed(fPath, i);
      auto s = stringField(cx, value[i], iPath);
      if (!s) continue;
      if (s->size() > 43) {
        cx.error(value[i], iPath, "may not be longer than 43 characters");
        continue;
      }
      auto cidr = Cidr::parse(*s);
      if (!cidr)
        cx.error(value[i], iPath, "Invalid CIDR format provided: " + cidr.error().message);
      else
        networks.cidrs.push_back(*cidr);
    }
    if (cx.errors() != before) return std::nullopt;
    return ClusterPeer{std::move(networks)};
  }
  DomainNamesPeer domains;
  for (size_t i = 0; i < value.size(); ++i) {
    std::string iPath = indexed(fPath, i);
    auto s = stringField(cx, value[i], iPath);
    if (!s) continue;
    if (!RE2::FullMatch(*s, domainNamePattern()))
      cx.error(value[i], iPath,
               "invalid domain name \"" + *s + "\": must match " + domainNamePattern().pattern());
    else
      domains.names.push_back(*s);
  }
  if (cx.errors() != before) return std::nullopt;
  return ClusterPeer{std::move(domains)};
}

// v1alpha2: `destinationPort: {number: N}` or `{range: {start, end}}`, start < end.
std::optional<PortSpec::Range> destinationPort(Context& cx, const yaml::Node& node, const std::string& path) {
  auto field = oneOf(cx, node, path, {"number", "range"}, nullptr);
  if (!field) return std::nullopt;
  yaml::Node value = *child(node, *field);
  std::string fPath = join(path, *field);
  if (*field == "number") {
    auto n = portNumber(cx, value, fPath);
    if (!n) return std::nullopt;
    return PortSpec::Range{*n, *n};
  }
  if (!expectMap(cx, value, fPath)) return std::nullopt;
  rejectUnknownFields(cx, value, fPath, {"start", "end"});
  auto start = child(value, "start"), end = child(value, "end");
  if (!start) cx.error(value, join(fPath, "start"), "required");
  if (!end) cx.error(value, join(fPath, "end"), "required");
  if (!start || !end) return std::nullopt;
  auto first = portNumber(cx, *start, join(fPath, "start"));
  auto last = portNumber(cx, *end, join(fPath, "end"));
  if (!first || !last) return std::nullopt;
  if (*first >= *last) {
    cx.error(value, fPath, "Start port must be less than End port");
    return std::nullopt;
  }
  return PortSpec::Range{*first, *last};
}

void namedPortEntries(std::vector<PortSpec>& out, const std::string& name) {
  for (Protocol p : {Protocol::kTCP, Protocol::kUDP, Protocol::kSCTP})
    out.push_back(PortSpec{.protocol = p, .port = name});
}

bool namedPortField(Context& cx, const yaml::Node& node, const std::string& path,
                    std::vector<PortSpec>& out) {
  auto s = stringField(cx, node, path);
  if (!s) return false;
  if (!isValidPortName(*s)) {
    cx.error(node, path, "invalid port name \"" + *s + "\": " + kPortNameRule);
    return false;
  }
  namedPortEntries(out, *s);
  return true;
}

// One entry of v1alpha2 `protocols`: `tcp`/`udp`/`sctp` with a destinationPort, or destinationNamedPort.
void loadProtocol(Context& cx, const yaml::Node& node, const std::string& path, std::vector<PortSpec>& out) {
  auto field = oneOf(cx, node, path, {"tcp", "udp", "sctp", "destinationNamedPort"}, nullptr);
  if (!field) return;
  yaml::Node value = *child(node, *field);
  std::string fPath = join(path, *field);
  if (*field == "destinationNamedPort") {
    namedPortField(cx, value, fPath, out);
    return;
  }
  Protocol protocol = *field == "tcp" ? Protocol::kTCP : *field == "udp" ? Protocol::kUDP : Protocol::kSCTP;
  if (!expectMap(cx, value, fPath)) return;
  rejectUnknownFields(cx, value, fPath, {"destinationPort"});
  auto port = child(value, "destinationPort");
  if (!port) {  // minProperties: 1
    cx.error(value, join(fPath, "destinationPort"), "required");
    return;
  }
  if (auto range = destinationPort(cx, *port, join(fPath, "destinationPort")))
    out.push_back(PortSpec{.protocol = protocol, .port = *range});
}

// One entry of v1alpha1 `ports`: portNumber {protocol, port}, portRange {protocol, start, end} or namedPort.
void loadPort(Context& cx, const yaml::Node& node, const std::string& path, std::vector<PortSpec>& out) {
  auto field = oneOf(cx, node, path, {"portNumber", "portRange", "namedPort"}, nullptr);
  if (!field) return;
  yaml::Node value = *child(node, *field);
  std::string fPath = join(path, *field);
  if (*field == "namedPort") {
    namedPortField(cx, value, fPath, out);
    return;
  }
  if (!expectMap(cx, value, fPath)) return;
  bool range = *field == "portRange";
  if (range)
    rejectUnknownFields(cx, value, fPath, {"protocol", "start", "end"});
  else
    rejectUnknownFields(cx, value, fPath, {"protocol", "port"});
  int before = cx.errors();
  Protocol protocol = Protocol::kTCP;
  if (auto p = child(value, "protocol")) {
    if (auto v = protocolField(cx, *p, join(fPath, "protocol"))) protocol = *v;
  }
  auto number = [&](const char* name) -> std::optional<uint16_t> {
    auto n = child(value, name);
    if (!n) {
      cx.error(value, join(fPath, name), "required");
      return std::nullopt;
    }
    return portNumber(cx, *n, join(fPath, name));
  };
  if (!range) {
    if (auto n = number("port"); n && cx.errors() == before)
      out.push_back(PortSpec{.protocol = protocol, .port = PortSpec::Range{*n, *n}});
    return;
  }
  auto first = number("start"), last = number("end");
  if (!first || !last || cx.errors() != before) return;
  if (*first >= *last) {
    cx.error(value, fPath, "Start port must be less than End port");
    return;
  }
  out.push_back(PortSpec{.protocol = protocol, .port = PortSpec::Range{*first, *last}});
}

std::optional<Action> parseAction(const Schema& schema, std::string_view s) {
  if (s == schema.accept) return Action::kAccept;
  if (s == "Deny") return Action::kDeny;
  if (schema.pass && s == "Pass") return Action::kPass;
  return std::nullopt;
}

std::vector<ClusterRule> loadRules(Context& cx, const Schema& schema, Direction d, const yaml::Node& node,
                                   const std::string& path) {
  std::vector<ClusterRule> rules;
  if (!boundedSequence(cx, node, path, 0, schema.maxRules)) return rules;
  const char* peersField = d == Direction::kIngress ? "from" : "to";
  for (size_t i = 0; i < node.size(); ++i) {
    yaml::Node r = node[i];
    std::string rPath = indexed(path, i);
    if (!expectMap(cx, r, rPath)) continue;
    rejectUnknownFields(cx, r, rPath, {"name", "action", peersField, schema.portsField});
    ClusterRule rule{.where = cx.at(r)};
    if (auto n = child(r, "name")) {
      if (auto s = stringField(cx, *n, join(rPath, "name"))) {
        if (s->size() > 100) cx.error(*n, join(rPath, "name"), "may not be longer than 100 characters");
        rule.name = *s;
      }
    }
    if (auto a = child(r, "action")) {
      if (auto s = stringField(cx, *a, join(rPath, "action"))) {
        if (auto action = parseAction(schema, *s)) {
          rule.action = *action;
        } else {
          cx.error(*a, join(rPath, "action"),
                   "unsupported value \"" + *s + "\" (must be " + schema.accept + ", Deny" +
                       (schema.pass ? " or Pass)" : ")"));
        }
      }
    } else {
      cx.error(r, join(rPath, "action"), "required");
    }
    std::string pPath = join(rPath, peersField);
    if (auto peers = child(r, peersField)) {
      if (boundedSequence(cx, *peers, pPath, 1, schema.maxPeers)) {
        for (size_t j = 0; j < peers->size(); ++j)
          if (auto peer = loadPeer(cx, schema, d, (*peers)[j], indexed(pPath, j)))
            rule.peers.push_back(*peer);
      }
    } else {
      cx.error(r, pPath, "required");
    }
    std::string portsPath = join(rPath, schema.portsField);
    auto ports = child(r, schema.portsField);
    if (ports && boundedSequence(cx, *ports, portsPath, 1, schema.maxPorts)) {
      for (size_t j = 0; j < ports->size(); ++j) {
        if (schema.kind == ClusterPolicyKind::kClusterNetworkPolicy)
          loadProtocol(cx, (*ports)[j], indexed(portsPath, j), rule.ports);
        else
          loadPort(cx, (*ports)[j], indexed(portsPath, j), rule.ports);
      }
    }
    bool named = std::any_of(rule.ports.begin(), rule.ports.end(),
                             [](const PortSpec& p) { return std::holds_alternative<std::string>(p.port); });
    bool addresses = std::any_of(rule.peers.begin(), rule.peers.end(), [](const ClusterPeer& p) {
      return std::holds_alternative<NetworksPeer>(p) || std::holds_alternative<NodesPeer>(p) ||
             std::holds_alternative<DomainNamesPeer>(p);
    });
    if (named && addresses)  // the CRD's CEL rule, in its words
      cx.error(
          r, rPath,
          "networks/nodes/domainNames peer cannot be set with namedPorts since there are no namedPorts for "
          "networks/nodes/domainNames");
    for (size_t j = 0; j < rule.peers.size(); ++j) {
      if (!std::holds_alternative<DomainNamesPeer>(rule.peers[j])) continue;
      yaml::Node at = (*child(r, peersField))[j];
      cx.warn(at, indexed(pPath, j),
              rule.action == Action::kAccept ? "domainNames are not enforced (that needs the cluster's DNS "
                                               "answers): this peer matches nothing"
                                             : "domainNames is only supported for Accept rules, and is not "
                                               "enforced: this peer matches nothing");
    }
    rules.push_back(std::move(rule));
  }
  return rules;
}

}  // namespace

void loadClusterPolicy(Context& cx, const yaml::Node& object, ClusterState& state, ClusterPolicyKind kind) {
  const Schema& schema = kind == ClusterPolicyKind::kClusterNetworkPolicy ? kCnp
                         : kind == ClusterPolicyKind::kAdminNetworkPolicy ? kAnp
                                                                          : kBanp;
  auto meta = metadataField(cx, object, std::string(schema.kindName), false, "");
  if (!meta) return;
  ClusterNetworkPolicy policy{.kind = kind, .name = meta->name, .where = cx.start()};
  auto spec = child(object, "spec");
  if (!spec) {
    cx.error(object, "spec", "required");
    return;
  }
  if (!expectMap(cx, *spec, "spec")) return;
  switch (kind) {
    case ClusterPolicyKind::kClusterNetworkPolicy:
      rejectUnknownFields(cx, *spec, "spec", {"tier", "priority", "subject", "ingress", "egress"});
      if (auto t = child(*spec, "tier")) {
        if (auto s = stringField(cx, *t, "spec.tier")) {
          if (*s == "Admin")
            policy.tier = Tier::kAdmin;
          else if (*s == "Baseline")
            policy.tier = Tier::kBaseline;
          else
            cx.error(*t, "spec.tier", "unsupported value \"" + *s + "\" (must be Admin or Baseline)");
        }
      } else {
        cx.error(*spec, "spec.tier", "required");
      }
      break;
    case ClusterPolicyKind::kAdminNetworkPolicy:
      rejectUnknownFields(cx, *spec, "spec", {"priority", "subject", "ingress", "egress"});
      policy.tier = Tier::kAdmin;
      break;
    case ClusterPolicyKind::kBaselineAdminNetworkPolicy:
      rejectUnknownFields(cx, *spec, "spec", {"subject", "ingress", "egress"});
      policy.tier = Tier::kBaseline;
      policy.priority = kBaselineAdminPriority;
      if (meta->name != "default") {
        auto md = child(object, "metadata");
        cx.error(
            md ? child(*md, "name").value_or(*md) : object, "metadata.name",
            "Only one baseline admin network policy with metadata.name=\"default\" can be created in the "
            "cluster");
      }
      break;
  }
  if (kind != ClusterPolicyKind::kBaselineAdminNetworkPolicy) {
    if (auto p = child(*spec, "priority")) {
      if (auto v = intField(cx, *p, "spec.priority")) {
        if (*v < 0 || *v > 1000)
          cx.error(*p, "spec.priority", "must be between 0 and 1000, not " + std::to_string(*v));
        else
          policy.priority = static_cast<int32_t>(*v);
      }
    } else {
      cx.error(*spec, "spec.priority", "required");
    }
  }
  if (auto subject = child(*spec, "subject")) {
    if (auto field = oneOf(cx, *subject, "spec.subject", {"namespaces", "pods"}, nullptr))
      if (auto peer = selectorPeer(cx, *child(*subject, *field), "spec.subject", *field))
        policy.subject = std::move(*peer);
  } else {
    cx.error(*spec, "spec.subject", "required");
  }
  if (auto n = child(*spec, "ingress"))
    policy.ingressRules = loadRules(cx, schema, Direction::kIngress, *n, "spec.ingress");
  if (auto n = child(*spec, "egress"))
    policy.egressRules = loadRules(cx, schema, Direction::kEgress, *n, "spec.egress");
  if (cx.errors()) return;
  state.upsert(std::move(policy));
}

}  // namespace nftpol::policy::load
