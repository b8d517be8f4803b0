#include "nftpol/nft/render.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <tuple>

namespace nftpol::nft {

const BaseChainSpec kBaseChains[1] = {{"filter-forward", "filter", "forward", 0, "accept"}};

namespace {

using policy::Allowance;
using policy::Compiled;
using policy::CompiledPeer;
using policy::Direction;
using policy::PodId;

constexpr size_t kCommentMax = 127;  // the kernel keeps comments of up to 128 bytes with the terminating NUL
constexpr size_t kReadableMax = 48;  // keeps names short enough to read in `nft list`

std::string hash8(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(h ^ (h >> 32)));
  return buf;
}

std::string cut(std::string s, size_t max) {
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

const char* suffix(Family f) {
  return f == Family::kV4 ? "-v4" : "-v6";
}
const char* addrType(Family f) {
  return f == Family::kV4 ? "ipv4_addr" : "ipv6_addr";
}
class Renderer {
 public:
  Renderer(const Compiled& c, const std::string& node) : c_(c), node_(node) {}

  Table run() {
    for (PodId p = 0; p < c_.pods().size(); ++p) {
      if (c_.pod(p).nodeName != node_) continue;
      for (Direction d : {Direction::kIngress, Direction::kEgress}) {
        if (!c_.isolated(p, d)) continue;
        std::string chain = chainFor(p, d);
        for (const auto& ip : c_.pod(p).ips)
          dispatch_[mapName(d, ip.family())].emplace_back(ip, chain);
      }
    }
    Table t;
    for (Direction d : {Direction::kIngress, Direction::kEgress})
      for (Family f : {Family::kV4, Family::kV6}) {
        Set& m = maps_[mapName(d, f)];
        m.name = mapName(d, f);
        m.type = addrType(f);
        m.isMap = true;
        m.comment =
            std::string("pod address -> its ") + (d == Direction::kIngress ? "ingress" : "egress") + " chain";
        // Elements in key order, as the kernel keeps them and `nft list` prints them.
        auto& entries = dispatch_[m.name];
        std::sort(entries.begin(), entries.end());
        for (const auto& [ip, chain] : entries)
          m.verdicts.emplace_back(ip.toString(), chain);
      }
    for (auto& [name, s] : maps_)
      t.sets.push_back(std::move(s));
    for (auto& [name, s] : sets_)
      t.sets.push_back(std::move(s));
    std::sort(t.sets.begin(), t.sets.end(), [](const Set& a, const Set& b) { return a.name < b.name; });
    t.chains.push_back(baseChain());
    for (auto& [name, chain] : chains_)
      t.chains.push_back(std::move(chain));
    return t;
  }

 private:
  static std::string mapName(Direction d, Family f) {
    return std::string(d == Direction::kIngress ? "ingress" : "egress") + suffix(f);
  }

  Chain baseChain() const {
    const BaseChainSpec& spec = kBaseChains[0];
    Chain c{.name = spec.name, .base = BaseChain{spec.type, spec.hook, spec.priority, spec.policy}};
    c.comment = "NetworkPolicy enforcement: egress of the source pod, then ingress of the destination pod";
    c.rules.push_back(
        {{CtState{{"established", "related"}}}, Verdict{Verdict::Kind::kAccept, ""}, "replies"});
    c.rules.push_back({{CtState{{"invalid"}}}, Verdict{Verdict::Kind::kDrop, ""}, ""});
    // Egress first and without accept: an allowed egress returns here so that the destination's ingress is
    // still checked.
    for (Direction d : {Direction::kEgress, Direction::kIngress})
      for (Family f : {Family::kV4, Family::kV6})
        c.rules.push_back({{},
                           VerdictMapLookup{f, d == Direction::kEgress ? Field::kSource : Field::kDestination,
                                            mapName(d, f)},
                           ""});
    return c;
  }

  std::string peerSet(const CompiledPeer& peer, Family f, const std::string& policyKey) {
    if (peer.kind == CompiledPeer::Kind::kSelector) {
      const auto& resolved = c_.resolvedPeer(peer.id);
      std::string name = "peer-" + hash8(resolved.description) + suffix(f);
      auto [it, inserted] = sets_.try_emplace(name);
      if (inserted) {
        Set& s = it->second;
        s.name = name;
        s.type = addrType(f);
        s.comment = cut(policyKey + ": " + resolved.description, kCommentMax);
        std::vector<IpAddress> addresses;
        for (PodId p : resolved.pods)
          if (const IpAddress* ip = c_.pod(p).address(f)) addresses.push_back(*ip);
        std::sort(addresses.begin(), addresses.end());
        addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
        for (const auto& ip : addresses)
          s.elements.push_back(ip.toString());
      }
      return name;
    }
    const policy::IpBlock& block = c_.ipBlock(peer.id);
    std::string name = "cidr-" + hash8(block.toString()) + suffix(f);
    auto [it, inserted] = sets_.try_emplace(name);
    if (inserted) {
      Set& s = it->second;
      s.name = name;
      s.type = addrType(f);
      s.interval = true;
      s.comment = cut(policyKey + ": " + block.toString(), kCommentMax);
      s.elements = blockElements(block);
    }
    return name;
  }

  // The chain implementing pod p's allowed set in direction d; pods whose chains would be equal share one.
  std::string chainFor(PodId p, Direction d) {
    Field peerField = d == Direction::kIngress ? Field::kSource : Field::kDestination;
    Verdict allow{d == Direction::kIngress ? Verdict::Kind::kAccept : Verdict::Kind::kReturn, ""};
    std::vector<Rule> rules;
    std::map<Family, std::vector<std::tuple<IpAddress, uint8_t, uint16_t>>>
        named;  // address, IP protocol, port
    std::string firstPolicy;
    for (const Allowance& a : c_.allowances(p, d)) {
      const auto& rule = c_.rules()[a.rule];
      std::string policyKey = c_.policies()[rule.policy].policy->key();
      if (firstPolicy.empty()) firstPolicy = policyKey;
      std::string comment = cut(policyKey + " " + rule.name(), kCommentMax);
      // One rule per (peer, family) x port entry; no port match when the rule admits every port.
      auto emit = [&](const std::optional<AddressInSet>& peerMatch) {
        auto add = [&](const std::optional<PortIs>& port) {
          Rule r{.action = allow, .comment = comment};
          if (peerMatch) r.matches.emplace_back(*peerMatch);
          if (port) r.matches.emplace_back(*port);
          rules.push_back(std::move(r));
        };
        if (a.allPorts) add(std::nullopt);
        for (const auto& port : a.ports)
          add(PortIs{port});
      };
      bool anyPortRule = a.allPorts || !a.ports.empty();  // named ports alone go to the named set below
      if (anyPortRule && a.allPeers) emit(std::nullopt);
      for (const auto& peer : anyPortRule ? a.peers : std::vector<CompiledPeer>{}) {
        for (Family f : {Family::kV4, Family::kV6}) {
          if (peer.kind == CompiledPeer::Kind::kIpBlock && c_.ipBlock(peer.id).cidr.family() != f) continue;
          emit(AddressInSet{f, peerField, peerSet(peer, f, policyKey)});
        }
      }
      for (const auto& t : a.namedTargets)
        for (const auto& ip : c_.pod(t.pod).ips)
          named[ip.family()].emplace_back(ip, ipProtocolNumber(t.protocol), t.port);
    }
    for (auto& [f, tuples] : named) {
      std::sort(tuples.begin(), tuples.end());
      tuples.erase(std::unique(tuples.begin(), tuples.end()), tuples.end());
      std::vector<std::string> elements;
      for (const auto& [ip, proto, port] : tuples)
        elements.push_back(ip.toString() + " . " + nftKeyword(*protocolFromNumber(proto)) + " . " +
                           std::to_string(port));
      std::string key;
      for (const auto& e : elements)
        key += e + ",";
      std::string name = "named-" + hash8(key) + suffix(f);
      auto [it, inserted] = sets_.try_emplace(name);
      if (inserted) {
        it->second = Set{.name = name,
                         .type = std::string(addrType(f)) + " . inet_proto . inet_service",
                         .elements = elements,
                         .comment = "named ports resolved on destination pods"};
      }
      rules.push_back({{DestinationPortInSet{f, name}}, allow, "named ports of egress rules"});
    }
    std::string isolatedBy;
    for (uint32_t policyId : c_.isolating(p, d))
      isolatedBy += (isolatedBy.empty() ? "" : ", ") + c_.policies()[policyId].policy->key();
    rules.push_back({{}, Verdict{Verdict::Kind::kDrop, ""}, cut("isolated by " + isolatedBy, kCommentMax)});

    std::string content;
    for (const auto& r : rules)
      content += toText(r) + "\n";
    if (firstPolicy.empty()) firstPolicy = c_.policies()[c_.isolating(p, d).front()].policy->key();
    std::string name = std::string(d == Direction::kIngress ? "ingress-" : "egress-") + hash8(content) + "/" +
                       cut(firstPolicy, kReadableMax);
    auto [it, inserted] = chains_.try_emplace(name);
    if (inserted) {
      it->second = Chain{.name = name, .rules = std::move(rules)};
      it->second.comment = cut(std::string(toString(d)) + " of pods selected by " + isolatedBy, kCommentMax);
    }
    return name;
  }

  const Compiled& c_;
  std::string node_;
  std::map<std::string, Set> sets_, maps_;
  std::map<std::string, std::vector<std::pair<IpAddress, std::string>>>
      dispatch_;  // map name -> (address, chain)
  std::map<std::string, Chain> chains_;
};

}  // namespace

Table render(const Compiled& compiled, const std::string& node) {
  return Renderer(compiled, node).run();
}

bool isOwnName(const std::string& name) {
  for (const char* prefix : {"ingress-", "egress-", "peer-", "cidr-", "named-"})
    if (name.rfind(prefix, 0) == 0) return true;
  for (const auto& b : kBaseChains)
    if (name == b.name) return true;
  return false;
}

}  // namespace nftpol::nft
