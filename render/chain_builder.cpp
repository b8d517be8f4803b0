#include "chain_builder.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <map>

#include "nftpol/nft/conntrack.h"
#include "nftpol/render/render.h"

namespace nftpol::render::detail {

namespace {
constexpr size_t kCommentMax = 127;  // the kernel keeps comments of up to 128 bytes with the terminating NUL
constexpr size_t kReadableMax = 48;  // keeps names short enough to read in `nft list`
}  // namespace

// 32 bits of FNV-1a named sets and chains until 2026-12: two distinct ipBlocks collided in one set, which the
// kernel enforced for both. 80 bits of SHA-256 need about 2^40 names for an even chance, and no input can be
// made to collide on purpose; claimName and putOnce check the rest.
std::string contentHash(std::string_view s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  // Fetched once: EVP_sha256() in a digest call fetches the implementation on every call, which cost more
  // than the hashing of a name.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  EVP_Digest(s.data(), s.size(), md, &length, kSha256, nullptr);
  static constexpr char kDigits[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out;
  uint32_t bits = 0;
  int held = 0;
  for (size_t i = 0; out.size() < 16;) {
    if (held < 5) {
      bits = (bits << 8) | md[i++];
      held += 8;
    }
    held -= 5;
    out += kDigits[(bits >> held) & 31];
  }
  return out;
}

void throwCollision(const std::string& name, const std::string& one, const std::string& other) {
  throw NameCollision("two different contents hash to the name " + name +
                      (one.empty() ? std::string() : " (\"" + one + "\" and \"" + other + "\")") +
                      "; refusing to render either");
}

std::string cut(std::string s, size_t max) {
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

const char* familySuffix(Family f) {
  return f == Family::kV4 ? "-v4" : "-v6";
}
std::string mapName(Direction d, Family f) {
  return std::string(d == Direction::kIngress ? "ingress" : "egress") + familySuffix(f);
}
std::string peerSetName(const std::string& peerDescription, Family f) {
  return "peer-" + contentHash(peerDescription) + familySuffix(f);
}
std::string cidrSetName(const policy::IpBlock& block, Family f) {
  return "cidr-" + contentHash(block.toString()) + familySuffix(f);
}

Set peerSet(const std::string& description, Family f, const std::vector<IpAddress>& addresses) {
  Set s{.name = peerSetName(description, f), .key = KeyType::address(f)};
  s.comment = cut(description, kCommentMax);
  s.elements.assign(addresses.begin(), addresses.end());
  return s;
}

Set cidrSet(const policy::IpBlock& block, Family f) {
  Set s{.name = cidrSetName(block, f), .key = KeyType::address(f), .interval = true};
  s.comment = cut(block.toString(), kCommentMax);
  s.elements = blockElements(block.cidr, block.except);
  return s;
}

std::string podSubnetsSetName(Family f) {
  return std::string("node-pod-subnets") + familySuffix(f);
}
std::string nodePodsSetName(Family f) {
  return std::string("node-pods") + familySuffix(f);
}

Set podSubnetsSet(Family f, const std::vector<Cidr>& subnets) {
  Set s{.name = podSubnetsSetName(f), .key = KeyType::address(f), .interval = true};
  s.comment = "this node's pod subnets: an address in them that no pod holds is closed";
  s.elements = unionElements(f, subnets);  // a Node's podCIDRs, --pod-cidr and the plugin's may nest or touch
  return s;
}

std::string traceSourcesSetName(Family f) {
  return traceSetName(true, f == Family::kV4);
}
std::string traceDestinationsSetName(Family f) {
  return traceSetName(false, f == Family::kV4);
}
std::vector<Set> traceSets() {
  std::vector<Set> sets;
  for (Family f : {Family::kV4, Family::kV6}) {
    // Elements come from `nftpol trace`, each with its own timeout: never ours to compare.
    sets.push_back(Set{.name = traceSourcesSetName(f),
                       .key = KeyType::address(f),
                       .comment = "sources nftpol trace follows, until their timeout",
                       .dynamic = true,
                       .timeoutSeconds = 60});
    sets.push_back(Set{.name = traceDestinationsSetName(f),
                       .key = KeyType::addressProtocolPort(f),
                       .comment = "destinations nftpol trace follows, until their timeout",
                       .dynamic = true,
                       .timeoutSeconds = 60});
  }
  return sets;
}

Set nodePodsSet(Family f, std::vector<IpAddress> addresses) {
  Set s{.name = nodePodsSetName(f), .key = KeyType::address(f)};
  s.comment = "addresses bound to this node's pods: programmed";
  std::sort(addresses.begin(), addresses.end());
  addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
  for (const auto& a : addresses)
    if (a.family() == f) s.elements.emplace_back(a);
  return s;
}

namespace {
Rule logRule(const FlowLogOptions& log, const LoggedDecision& decision, std::vector<Match> matches,
             std::string comment) {
  return Rule{.matches = std::move(matches),
              .action = Continue{},
              .comment = std::move(comment),
              .statements = {LogToGroup{.counter = kFlowLogCounter,
                                        .group = log.group,
                                        .snaplen = log.snaplen,
                                        .prefix = flowLogPrefix(decision),
                                        .ratePerSecond = log.ratePerSecond,
                                        .burst = log.burst}}};
}

// The log rules of a policy chain, each before the rule whose decision it reports.
void addLogRules(std::vector<Rule>& rules, Direction d, const std::string& hash, const FlowLogOptions& log) {
  auto side = d == Direction::kIngress ? LoggedDecision::Side::kIngress : LoggedDecision::Side::kEgress;
  std::vector<Rule> out;
  out.reserve(rules.size() * 2);
  int allowing = 0;
  for (auto& r : rules) {
    const auto* v = std::get_if<Verdict>(&r.action);
    if (v && v->kind == Verdict::Kind::kDrop)
      out.push_back(logRule(log, {.side = side, .allowed = false, .chainHash = hash}, r.matches, r.comment));
    else if (v && v->kind == Verdict::Kind::kAccept && log.allowed)
      out.push_back(logRule(log, {.side = side, .allowed = true, .chainHash = hash, .rule = allowing},
                            r.matches, r.comment));
    if (v && v->kind != Verdict::Kind::kDrop) ++allowing;
    out.push_back(std::move(r));
  }
  rules = std::move(out);
}
}  // namespace

namespace {
// One rule per (peer, family) x port entry, each with `action`; no peer match when `allPeers`, no port match
// when the rule admits every port.
void emitPeerPortRules(std::vector<Rule>& rules, Field peerField, bool allPeers,
                       const std::vector<std::pair<Family, std::string>>& peerSets, bool allPorts,
                       const std::vector<PortRange>& ports, const nft::Action& action,
                       const std::string& comment) {
  auto emit = [&](const std::optional<AddressInSet>& peerMatch) {
    auto add = [&](const std::optional<PortIs>& port) {
      Rule r{.action = action, .comment = comment};
      if (peerMatch) r.matches.emplace_back(*peerMatch);
      if (port) r.matches.emplace_back(*port);
      rules.push_back(std::move(r));
    };
    if (allPorts) add(std::nullopt);
    for (const auto& port : ports)
      add(PortIs{port});
  };
  if (!allPorts && ports.empty()) return;  // named ports alone go to a named set
  if (allPeers) emit(std::nullopt);
  for (const auto& [f, set] : peerSets)
    emit(AddressInSet{f, peerField, set});
}

// The named-port set of one family's (address, IP protocol, port) tuples, sorted and unique:
// "named-<hash>-v4".
Set namedSet(Family f, std::vector<std::tuple<IpAddress, uint8_t, uint16_t>> tuples) {
  std::sort(tuples.begin(), tuples.end());
  tuples.erase(std::unique(tuples.begin(), tuples.end()), tuples.end());
  std::vector<Key> elements;
  std::string key;
  for (const auto& [ip, proto, port] : tuples) {
    elements.emplace_back(AddressProtocolPort{ip, *protocolFromNumber(proto), port});
    key += toString(elements.back()) + ",";
  }
  return Set{.name = "named-" + contentHash(key) + familySuffix(f),
             .key = KeyType::addressProtocolPort(f),
             .elements = std::move(elements),
             .comment = "named ports resolved on destination pods"};
}

std::string chainContent(const std::vector<Rule>& rules) {
  std::string content;
  for (const auto& r : rules)
    content += toText(r) + "\n";
  return content;
}
}  // namespace

BuiltChain buildChain(Direction d, const std::vector<RuleAllowance>& allowances,
                      const std::vector<std::string>& isolatedBy, const FlowLogOptions* log) {
  Field peerField = d == Direction::kIngress ? Field::kSource : Field::kDestination;
  Verdict allow{d == Direction::kIngress ? Verdict::Kind::kAccept : Verdict::Kind::kReturn, ""};
  BuiltChain built;
  std::vector<Rule>& rules = built.chain.rules;
  std::map<Family, std::vector<std::tuple<IpAddress, uint8_t, uint16_t>>> named;
  for (const RuleAllowance& a : allowances) {
    emitPeerPortRules(rules, peerField, a.allPeers, a.peerSets, a.allPorts, a.ports, allow,
                      cut(a.policyKey + " " + a.ruleName, kCommentMax));
    for (const auto& t : a.named)
      named[std::get<0>(t).family()].push_back(t);
  }
  for (auto& [f, tuples] : named) {
    built.namedSets.push_back(namedSet(f, std::move(tuples)));
    rules.push_back(
        {{DestinationPortInSet{f, built.namedSets.back().name}}, allow, "named ports of egress rules"});
  }
  std::string by;
  for (const auto& key : isolatedBy)
    by += (by.empty() ? "" : ", ") + key;
  rules.push_back({{}, Verdict{Verdict::Kind::kDrop, ""}, cut("isolated by " + by, kCommentMax)});

  const std::string& first = allowances.empty() ? isolatedBy.front() : allowances.front().policyKey;
  std::string hash = contentHash(chainContent(rules));
  built.chain.name =
      std::string(d == Direction::kIngress ? "ingress-" : "egress-") + hash + "/" + cut(first, kReadableMax);
  if (log) addLogRules(rules, d, hash, *log);
  built.chain.comment = cut(std::string(toString(d)) + " of pods selected by " + by, kCommentMax);
  return built;
}

std::string passChainName(Direction d) {
  return std::string(d == Direction::kIngress ? "ingress" : "egress") + "-pass";
}
std::string restMapName(Direction d, Family f) {
  return std::string(d == Direction::kIngress ? "ingress" : "egress") + "-rest" + familySuffix(f);
}

std::string forwardIngressChainName() {
  return "forward-ingress";
}
std::string forwardAllowedChainName() {
  return "forward-allowed";
}

namespace {
// What a policy chain's name and its log prefixes derive from.
std::string policyChainHash(Direction d, policy::Tier tier, const std::string& policyKey,
                            const std::string& podPorts) {
  std::string identity =
      std::string(policy::toString(tier)) + " " + std::string(toString(d)) + " " + policyKey;
  if (!podPorts.empty()) identity += " ports " + podPorts;
  return contentHash(identity);
}
}  // namespace

std::string policyChainName(Direction d, policy::Tier tier, const std::string& policyKey,
                            const std::string& podPorts) {
  return std::string("cnp-") + (d == Direction::kIngress ? "ingress-" : "egress-") +
         policyChainHash(d, tier, policyKey, podPorts) + "/" + cut(policyKey, kReadableMax);
}

BuiltChain buildPolicyChain(Direction d, policy::Tier tier, const std::vector<TierRule>& tierRules,
                            const std::string& policyKey, const std::string& podPorts,
                            const FlowLogOptions* log) {
  Field peerField = d == Direction::kIngress ? Field::kSource : Field::kDestination;
  bool admin = tier == policy::Tier::kAdmin;
  // Every verdict here is final or leaves the tier by goto: a return would only go back to the class chain,
  // which would go on to the next policy.
  Verdict allowed = d == Direction::kIngress ? Verdict{Verdict::Kind::kAccept, ""}
                                             : Verdict{Verdict::Kind::kGoto, forwardIngressChainName()};
  auto verdict = [&](policy::Action a) -> Verdict {
    switch (a) {
      case policy::Action::kAccept:
        return allowed;
      case policy::Action::kDeny:
        return {Verdict::Kind::kDrop, ""};
      case policy::Action::kPass:
        break;
    }
    if (admin) return {Verdict::Kind::kGoto, passChainName(d)};
    return d == Direction::kIngress ? Verdict{Verdict::Kind::kGoto, forwardAllowedChainName()} : allowed;
  };
  BuiltChain built;
  std::vector<Rule>& rules = built.chain.rules;
  for (const TierRule& r : tierRules) {
    std::string comment =
        cut(r.policyKey + " " + r.ruleName + " " + std::string(policy::toString(r.action)), kCommentMax);
    if (r.deniesAll) {
      rules.push_back(
          {{}, Verdict{Verdict::Kind::kDrop, ""}, cut(comment + ": a peer it cannot read", kCommentMax)});
      continue;
    }
    emitPeerPortRules(rules, peerField, false, r.peerSets, r.allPorts, r.ports, verdict(r.action), comment);
    std::map<Family, std::vector<std::tuple<IpAddress, uint8_t, uint16_t>>> named;
    for (const auto& t : r.named)
      named[std::get<0>(t).family()].push_back(t);
    for (auto& [f, tuples] : named) {
      built.namedSets.push_back(namedSet(f, std::move(tuples)));
      rules.push_back({{DestinationPortInSet{f, built.namedSets.back().name}}, verdict(r.action), comment});
    }
  }
  built.chain.name = policyChainName(d, tier, policyKey, podPorts);
  if (log) addLogRules(rules, d, policyChainHash(d, tier, policyKey, podPorts), *log);
  built.chain.comment = cut(
      std::string(policy::toString(tier)) + " tier " + std::string(toString(d)) + " rules of " + policyKey,
      kCommentMax);
  return built;
}

Chain buildClassChain(Direction d, policy::Tier tier, const std::vector<std::string>& policyChains,
                      const std::string& member) {
  bool admin = tier == policy::Tier::kAdmin;
  Chain c;
  for (const auto& chain : policyChains)
    c.rules.push_back({{}, Verdict{Verdict::Kind::kJump, chain}, ""});
  if (admin)
    c.rules.push_back({{}, Verdict{Verdict::Kind::kGoto, passChainName(d)}, "no Admin tier rule decided"});
  else
    c.rules.push_back({{},
                       Verdict{Verdict::Kind::kGoto, d == Direction::kIngress ? forwardAllowedChainName()
                                                                              : forwardIngressChainName()},
                       "no Baseline tier rule decided: allowed"});
  std::string identity = std::string(policy::toString(tier)) + " " + std::string(toString(d)) + " " + member;
  c.name = std::string(admin ? "admin-" : "baseline-") + (d == Direction::kIngress ? "ingress-" : "egress-") +
           contentHash(identity) + "/" + cut(member, kReadableMax);
  // The kernel keeps a chain's comment from its creation: it says what stays true while the chain lives.
  c.comment = cut(std::string(policy::toString(tier)) + " tier " + std::string(toString(d)) +
                      ": the cluster policies of pods like " + member + ", in order",
                  kCommentMax);
  return c;
}

std::string nodesSetName(const std::string& selector, Family f) {
  return "nodes-" + contentHash(selector) + familySuffix(f);
}
Set nodesSet(const std::string& selector, Family f, const std::vector<IpAddress>& addresses) {
  Set s{.name = nodesSetName(selector, f), .key = KeyType::address(f)};
  s.comment =
      cut("addresses of the Nodes " + (selector.empty() ? std::string("(all)") : selector), kCommentMax);
  for (const auto& a : addresses)
    if (a.family() == f) s.elements.emplace_back(a);
  return s;
}

BuiltChain buildAuditChain(Direction d, const std::vector<RuleAllowance>& allowances,
                           const std::vector<std::string>& isolatedBy, const FlowLogOptions& log) {
  BuiltChain built = buildChain(d, allowances, isolatedBy);  // what they would decide, unlogged
  std::string hash = built.chain.name.substr(built.chain.name.find('-') + 1, 16);
  built.chain.name = "audit-" + built.chain.name;
  built.chain.comment = cut("audit: " + built.chain.comment, kCommentMax);
  Verdict allow{d == Direction::kIngress ? Verdict::Kind::kAccept : Verdict::Kind::kReturn, ""};
  Rule wouldDeny = std::move(built.chain.rules.back());  // the default deny
  built.chain.rules.pop_back();
  auto side = d == Direction::kIngress ? LoggedDecision::Side::kIngress : LoggedDecision::Side::kEgress;
  built.chain.rules.push_back(logRule(log, {.side = side, .allowed = false, .chainHash = hash, .audit = true},
                                      {}, wouldDeny.comment));
  built.chain.rules.push_back({{}, allow, cut("would be denied: " + wouldDeny.comment, kCommentMax)});
  return built;
}

BuiltChain divertToAudit(Direction d, const BuiltChain* enforced, const std::string& audit,
                         const FlowLogOptions& log) {
  BuiltChain built;
  Verdict toAudit{Verdict::Kind::kGoto, audit};
  if (enforced) {
    built = *enforced;
    for (auto& r : built.chain.rules)
      if (auto* v = std::get_if<Verdict>(&r.action); v && v->kind != Verdict::Kind::kDrop) r.action = toAudit;
  } else {
    // Not isolated by an enforced policy: everything is allowed, and meets the audit chain. An ingress audit
    // chain accepts, so the end of filter-forward, which logs allowed connections, is not reached: log here.
    if (d == Direction::kIngress && log.allowed)
      built.chain.rules.push_back(
          logRule(log, {.allowed = true}, {}, "allowed: no enforced policy isolates it"));
    built.chain.rules.push_back({{}, toAudit, "no enforced policy isolates it"});
    built.chain.comment =
        cut(std::string(toString(d)) + " of pods that only policies in audit mode select", kCommentMax);
  }
  std::string readable = audit.substr(audit.find('/') + 1);
  built.chain.name = std::string(d == Direction::kIngress ? "ingress-" : "egress-") +
                     contentHash(chainContent(built.chain.rules)) + "/" + cut(readable, kReadableMax);
  return built;
}

Chain baseChain(const FlowLogOptions* log) {
  Chain c{.name = "filter-forward",
          .base = BaseChain{ChainType::kFilter, Hook::kForward, Priority::kFilter, ChainPolicy::kAccept}};
  c.comment = "NetworkPolicy enforcement: egress of the source pod, then ingress of the destination pod";
  const MarkHas revoked{kRevokedConnectionMark, MarkHas::Of::kConnection};
  c.rules.push_back({{revoked, PortIs{{Protocol::kTCP, 0, 65535}}},
                     Reject{.tcpReset = true},
                     "a connection a policy change revoked"});
  c.rules.push_back({{revoked}, Verdict{Verdict::Kind::kDrop, ""}, ""});
  c.rules.push_back({{CtState{{ConnState::kEstablished, ConnState::kRelated}}},
                     Verdict{Verdict::Kind::kAccept, ""},
                     "replies"});
  c.rules.push_back({{CtState{{ConnState::kInvalid}}}, Verdict{Verdict::Kind::kDrop, ""}, ""});
  // `nftpol trace` arms this by adding elements that time out to the two sets; idle, they are empty and no
  // rule changes. Here only new connections pay for the lookup.
  for (Family f : {Family::kV4, Family::kV6})
    c.rules.push_back({{AddressInSet{f, Field::kSource, traceSourcesSetName(f)},
                        DestinationPortInSet{f, traceDestinationsSetName(f)}},
                       Continue{},
                       "traced by nftpol trace",
                       {TraceOn{}}});
  // After the replies: only new connections pay for the two lookups (a released address's connections are
  // deleted with it).
  for (Field field : {Field::kSource, Field::kDestination})
    for (Family f : {Family::kV4, Family::kV6})
      c.rules.push_back({{AddressInSet{f, field, podSubnetsSetName(f)},
                          AddressInSet{f, field, nodePodsSetName(f), /*negated=*/true}},
                         Verdict{Verdict::Kind::kDrop, ""},
                         field == Field::kSource ? "from a pod address not programmed"
                                                 : "to a pod address not programmed"});
  if (log)
    c.rules.push_back({{Translated{}}, Continue{}, "addressed to a service", {SetMarkBit{kTranslatedMark}}});
  // Egress first and without accept: an allowed egress returns here, and the destination's ingress decides.
  for (Family f : {Family::kV4, Family::kV6})
    c.rules.push_back({{}, VerdictMapLookup{f, Field::kSource, mapName(Direction::kEgress, f)}, ""});
  c.rules.push_back({{}, Verdict{Verdict::Kind::kGoto, forwardIngressChainName()}, ""});
  return c;
}

namespace {
Chain passChain(Direction d) {
  Chain c{.name = passChainName(d)};
  c.comment = std::string("after the Admin tier: the ") + std::string(toString(d)) +
              " of a pod goes on to its NetworkPolicy or Baseline tier chain";
  for (Family f : {Family::kV4, Family::kV6})
    c.rules.push_back({{},
                       VerdictMapLookup{f, d == Direction::kEgress ? Field::kSource : Field::kDestination,
                                        restMapName(d, f)},
                       ""});
  // Reached by a goto from a policy's chain, so never returns: that would go on with the Admin tier.
  c.rules.push_back({{},
                     Verdict{Verdict::Kind::kGoto, d == Direction::kIngress ? forwardAllowedChainName()
                                                                            : forwardIngressChainName()},
                     "allowed"});
  return c;
}

// The ingress half of filter-forward, a chain of its own so that an egress decided deep in the cluster
// policies' chains can go on to it (goto), as one decided in filter-forward's own lookups does.
Chain forwardIngressChain() {
  Chain c{.name = forwardIngressChainName()};
  c.comment = "the ingress of the destination pod, after the egress of the source pod allowed it";
  for (Family f : {Family::kV4, Family::kV6})
    c.rules.push_back({{}, VerdictMapLookup{f, Field::kDestination, mapName(Direction::kIngress, f)}, ""});
  c.rules.push_back({{}, Verdict{Verdict::Kind::kGoto, forwardAllowedChainName()}, ""});
  return c;
}

// What gets here is allowed, and no ingress chain of this node decided it: either the destination is a pod
// of this node that no policy isolates (or a Baseline Pass, or no rule, let through), or the connection
// leaves for another node, whose ingress decides (this node's decision was the source's egress). Logged once
// each; traffic between other hosts is not ours. It accepts, never returns: it is reached by gotos from
// chains nested in the tiers.
Chain forwardAllowedChain(const FlowLogOptions* log) {
  Chain c{.name = forwardAllowedChainName()};
  c.comment = "allowed: no policy of this node decided against it";
  if (log && log->allowed)
    for (Family f : {Family::kV4, Family::kV6}) {
      c.rules.push_back(logRule(*log, {.allowed = true},
                                {AddressInSet{f, Field::kDestination, nodePodsSetName(f)}},
                                "allowed: no policy of this node's pod isolates its ingress"));
      c.rules.push_back(logRule(*log,
                                {.side = LoggedDecision::Side::kEgress, .allowed = true, .chainHash = "-"},
                                {AddressInSet{f, Field::kSource, nodePodsSetName(f)},
                                 AddressInSet{f, Field::kDestination, nodePodsSetName(f), /*negated=*/true}},
                                "allowed out: the destination's node decides its ingress"));
    }
  c.rules.push_back({{}, Verdict{Verdict::Kind::kAccept, ""}, ""});
  return c;
}
}  // namespace

std::vector<Map> dispatchMaps(std::vector<std::tuple<std::string, IpAddress, std::string>> entries) {
  // Elements in key order, as the kernel keeps them and `nft list` prints them.
  std::sort(entries.begin(), entries.end());
  std::vector<Map> maps;
  for (bool rest : {false, true})
    for (Direction d : {Direction::kIngress, Direction::kEgress})
      for (Family f : {Family::kV4, Family::kV6}) {
        Map m{.name = rest ? restMapName(d, f) : mapName(d, f), .key = KeyType::address(f)};
        std::string side = d == Direction::kIngress ? "ingress" : "egress";
        m.comment = rest ? "pod address -> its " + side + " chain after the Admin tier"
                         : "pod address -> its " + side + " chain";
        auto from = std::lower_bound(entries.begin(), entries.end(), m.name,
                                     [](const auto& e, const std::string& n) { return std::get<0>(e) < n; });
        for (auto it = from; it != entries.end() && std::get<0>(*it) == m.name; ++it)
          m.verdicts.emplace_back(std::get<1>(*it), std::get<2>(*it));
        maps.push_back(std::move(m));
      }
  return maps;
}

Table assemble(std::vector<Set> sets, std::vector<Map> maps, std::vector<Chain> chains, ServiceParts services,
               const FlowLogOptions* log) {
  Table t;
  t.sets = std::move(sets);
  for (auto& s : traceSets())
    t.sets.push_back(std::move(s));
  for (auto& s : services.sets)
    t.sets.push_back(std::move(s));
  std::sort(t.sets.begin(), t.sets.end(), [](const Set& a, const Set& b) { return a.name < b.name; });
  t.maps = std::move(maps);
  for (auto& m : services.maps)
    t.maps.push_back(std::move(m));
  std::sort(t.maps.begin(), t.maps.end(), [](const Map& a, const Map& b) { return a.name < b.name; });
  for (auto& c : services.chains)
    chains.push_back(std::move(c));
  for (Direction d : {Direction::kIngress, Direction::kEgress})
    chains.push_back(passChain(d));
  chains.push_back(forwardIngressChain());
  chains.push_back(forwardAllowedChain(log));
  std::sort(chains.begin(), chains.end(), [](const Chain& a, const Chain& b) { return a.name < b.name; });
  t.chains.reserve(chains.size() + 1 + services.baseChains.size());
  Chain forward = baseChain(log);
  // After `ct state invalid drop`: only new connections meet the rejects, replies never do.
  auto policyLookups = std::find_if(forward.rules.begin(), forward.rules.end(), [](const Rule& r) {
    return std::holds_alternative<VerdictMapLookup>(r.action);
  });
  forward.rules.insert(policyLookups, services.forwardRules.begin(), services.forwardRules.end());
  t.chains.push_back(std::move(forward));
  if (log)
    t.counters.push_back(
        {kFlowLogCounter,
         "packets offered to the flow log's rules: logged, or over their rate and not logged"});
  for (auto& c : services.baseChains)
    t.chains.push_back(std::move(c));
  for (auto& c : chains)
    t.chains.push_back(std::move(c));
  return t;
}

}  // namespace nftpol::render::detail
