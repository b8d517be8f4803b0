#include "nftpol/nft/render.h"

#include <algorithm>
#include <map>

#include "chain_builder.h"

namespace nftpol::nft {

const BaseChainSpec kBaseChains[1] = {{"filter-forward", "filter", "forward", 0, "accept"}};

namespace {

using policy::Allowance;
using policy::Compiled;
using policy::CompiledPeer;
using policy::Direction;
using policy::PodId;

class Renderer {
 public:
  Renderer(const Compiled& c, const std::string& node) : c_(c), node_(node) {
    // A set's comment names the first policy, by namespace/name, whose rules name its peer.
    for (const auto& rule : c_.rules()) {
      const std::string& key = c_.policies()[rule.policy].policy->key();
      for (const auto& peer : rule.peers) {
        auto& user = (peer.kind == CompiledPeer::Kind::kSelector ? peerUser_ : blockUser_)[peer.id];
        if (user.empty() || key < user) user = key;
      }
    }
  }

  Table run() {
    std::vector<std::tuple<std::string, IpAddress, std::string>> dispatch;
    for (PodId p = 0; p < c_.pods().size(); ++p) {
      if (c_.pod(p).nodeName != node_) continue;
      for (Direction d : {Direction::kIngress, Direction::kEgress}) {
        if (!c_.isolated(p, d)) continue;
        std::string chain = chainFor(p, d);
        for (const auto& ip : c_.pod(p).ips)
          dispatch.emplace_back(detail::mapName(d, ip.family()), ip, chain);
      }
    }
    std::vector<Set> sets = detail::dispatchMaps(std::move(dispatch));
    for (auto& [name, s] : sets_)
      sets.push_back(std::move(s));
    std::vector<Chain> chains;
    for (auto& [name, chain] : chains_)
      chains.push_back(std::move(chain));
    return detail::assemble(std::move(sets), std::move(chains),
                            detail::renderServices(policy::Services::build(c_.state()), node_));
  }

 private:
  std::string peerSet(const CompiledPeer& peer, Family f) {
    if (peer.kind == CompiledPeer::Kind::kSelector) {
      const auto& resolved = c_.resolvedPeer(peer.id);
      std::string name = detail::peerSetName(resolved.description, f);
      detail::claimName(names_, name, resolved.description);
      if (!sets_.count(name)) {
        std::vector<IpAddress> addresses;
        for (PodId p : resolved.pods)
          if (const IpAddress* ip = c_.pod(p).address(f)) addresses.push_back(*ip);
        std::sort(addresses.begin(), addresses.end());
        addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
        sets_.emplace(name, detail::peerSet(resolved.description, f, peerUser_[peer.id], addresses));
      }
      return name;
    }
    const policy::IpBlock& block = c_.ipBlock(peer.id);
    std::string name = detail::cidrSetName(block, f);
    detail::claimName(names_, name, block.toString());
    if (!sets_.count(name)) sets_.emplace(name, detail::cidrSet(block, f, blockUser_[peer.id]));
    return name;
  }

  // The chain implementing pod p's allowed set in direction d; pods whose chains would be equal share one.
  std::string chainFor(PodId p, Direction d) {
    std::vector<detail::RuleAllowance> allowances;
    for (const Allowance& a : c_.allowances(p, d)) {
      const auto& rule = c_.rules()[a.rule];
      detail::RuleAllowance r{.policyKey = c_.policies()[rule.policy].policy->key(),
                              .ruleName = rule.name(),
                              .allPeers = a.allPeers,
                              .allPorts = a.allPorts,
                              .ports = a.ports};
      if (a.allPorts || !a.ports.empty()) {
        for (const auto& peer : a.peers)
          for (Family f : {Family::kV4, Family::kV6}) {
            if (peer.kind == CompiledPeer::Kind::kIpBlock && c_.ipBlock(peer.id).cidr.family() != f) continue;
            r.peerSets.emplace_back(f, peerSet(peer, f));
          }
      }
      for (const auto& t : a.namedTargets)
        for (const auto& ip : c_.pod(t.pod).ips)
          r.named.emplace_back(ip, ipProtocolNumber(t.protocol), t.port);
      allowances.push_back(std::move(r));
    }
    std::vector<std::string> isolatedBy;
    for (uint32_t policyId : c_.isolating(p, d))
      isolatedBy.push_back(c_.policies()[policyId].policy->key());
    detail::BuiltChain built = detail::buildChain(d, allowances, isolatedBy);
    for (auto& s : built.namedSets)
      detail::putOnce(sets_, s.name, std::move(s));
    std::string name = built.chain.name;
    detail::putOnce(chains_, name, std::move(built.chain));
    return name;
  }

  const Compiled& c_;
  std::string node_;
  std::map<uint32_t, std::string> peerUser_, blockUser_;
  std::map<std::string, Set> sets_;
  std::map<std::string, Chain> chains_;
  std::map<std::string, std::string> names_;  // peer and ipBlock set names -> what they were hashed from
};

}  // namespace

Table render(const Compiled& compiled, const std::string& node) {
  return Renderer(compiled, node).run();
}

bool isOwnName(const std::string& name) {
  for (const char* prefix : {"ingress-", "egress-", "peer-", "cidr-", "named-", "svc-", "ext-", "ep-",
                             "nodeport-", "aff-", "backends-", "service-", "no-endpoint", "nat-", "filter-"})
    if (name.rfind(prefix, 0) == 0) return true;
  return name == "services";
}

}  // namespace nftpol::nft
