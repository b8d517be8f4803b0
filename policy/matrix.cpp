#include "nftpol/policy/matrix.h"

#include <algorithm>
#include <map>
#include <memory>
#include <tuple>

namespace nftpol::policy {
namespace {

// Transposes a 64x64 bit block in place (row r, column c = bit c of word r); the recursive block swap of
// Hacker's Delight, 6 rounds of 32 word operations instead of 4096 bit moves.
void transpose64(uint64_t a[64]) {
  uint64_t m = 0x00000000FFFFFFFFull;
  for (int j = 32; j != 0; j >>= 1, m ^= m << j) {
    for (int k = 0; k < 64; k = ((k | j) + 1) & ~j) {
      uint64_t t = ((a[k] >> j) ^ a[k | j]) & m;
      a[k] ^= t << j;
      a[k | j] ^= t;
    }
  }
}

using Bits = std::vector<uint64_t>;

void orInto(Bits& dst, const Bits& src) {
  for (size_t i = 0; i < dst.size(); ++i)
    dst[i] |= src[i];
}

class MatrixBuilder {
 public:
  MatrixBuilder(const Compiled& c, Protocol protocol, uint16_t port)
      : c_(c), n_(c.pods().size()), words_((n_ + 63) / 64), protocol_(protocol), port_(port) {
    ones_.assign(words_, ~uint64_t{0});
    if (n_ % 64) ones_.back() = (uint64_t{1} << (n_ % 64)) - 1;
    zeros_.assign(words_, 0);
  }

  BitMatrix build() {
    BitMatrix result(n_);
    bool any[2] = {false, false};
    for (const Pod* p : c_.pods())
      for (const auto& ip : p->ips)
        any[ip.family() == Family::kV4 ? 0 : 1] = true;
    for (Family f : {Family::kV4, Family::kV6}) {
      if (!any[f == Family::kV4 ? 0 : 1]) continue;
      family_ = f;
      ruleBits_.clear();
      blockBits_.clear();
      egressMemo_.clear();
      tieredEgressMemo_.clear();
      clusterPeerBits_.clear();  // a networks peer holds the pods by their address of the family
      clusterEgressBits_.clear();
      Bits has(words_, 0);
      for (PodId i = 0; i < n_; ++i)
        if (c_.pod(i).address(f)) has[i / 64] |= uint64_t{1} << (i % 64);
      BitMatrix ingress = ingressRows().transposed();  // row i: the destinations whose ingress admits i
      for (PodId i = 0; i < n_; ++i) {
        if (!c_.pod(i).address(f)) continue;
        const Bits& egress = egressRow(i);
        uint64_t* out = result.row(i);
        const uint64_t* in = ingress.row(i);
        for (size_t w = 0; w < words_; ++w)
          out[w] |= egress[w] & in[w] & has[w];
      }
    }
    for (PodId i = 0; i < n_; ++i)
      result.set(i, i);  // a pod may always talk to itself
    return result;
  }

 private:
  Bits fromList(const std::vector<PodId>& pods) const {
    Bits b(words_, 0);
    for (PodId p : pods)
      b[p / 64] |= uint64_t{1} << (p % 64);
    return b;
  }

  const Bits& selectorBits(uint32_t id) {
    auto& slot = selectorBits_[id];
    if (!slot) slot = std::make_unique<Bits>(fromList(c_.resolvedPeer(id).pods));
    return *slot;
  }

  const Bits& blockBits(uint32_t id) {
    auto& slot = blockBits_[id];
    if (!slot) {
      slot = std::make_unique<Bits>(words_, 0);
      const IpBlock& block = c_.ipBlock(id);
      for (PodId p = 0; p < n_; ++p) {
        const IpAddress* ip = c_.pod(p).address(family_);
        if (ip && block.contains(*ip)) (*slot)[p / 64] |= uint64_t{1} << (p % 64);
      }
    }
    return *slot;
  }

  // The pods matched by any peer of the rule, in the current family.
  const Bits& ruleBits(uint32_t ruleId) {
    auto& slot = ruleBits_[ruleId];
    if (slot) return *slot;
    const CompiledRule& rule = c_.rules()[ruleId];
    if (rule.peers.empty()) {
      slot = std::make_unique<Bits>(ones_);
    } else {
      slot = std::make_unique<Bits>(words_, 0);
      for (const auto& peer : rule.peers)
        orInto(*slot,
               peer.kind == CompiledPeer::Kind::kSelector ? selectorBits(peer.id) : blockBits(peer.id));
    }
    return *slot;
  }

  // Pods whose container port `name`/protocol is the queried port: where a named port in an egress rule
  // lands.
  const Bits& namedPortBits(const std::string& name) {
    auto& slot = namedPortBits_[name];
    if (!slot) {
      slot = std::make_unique<Bits>(words_, 0);
      for (PodId p = 0; p < n_; ++p)
        if (c_.pod(p).namedPort(name, protocol_) == port_) (*slot)[p / 64] |= uint64_t{1} << (p % 64);
    }
    return *slot;
  }

  // A cluster policy rule as the tiers walk it: which rule, and whether its ports admit the queried port on
  // every peer (kAll), on none, or on the peers carrying a named port (kNamed, egress only).
  struct TierRule {
    uint32_t policy;
    uint32_t rule;
    auto operator<=>(const TierRule&) const = default;
  };

  // The far ends one cluster policy rule's peers hold (all pods for a Deny or Pass with a peer this version
  // cannot read), whatever the port: computed once per rule.
  const Bits& clusterPeerBits(const TierRule& tr, Direction d) {
    auto& slot = clusterPeerBits_[{tr.policy, tr.rule, d}];
    if (slot) return *slot;
    const ClusterRule& rule = c_.clusterPolicies()[tr.policy].policy->rules(d)[tr.rule];
    if (rule.deniesAll()) return *(slot = std::make_unique<Bits>(ones_));
    slot = std::make_unique<Bits>(words_, 0);
    Bits& peers = *slot;
    const auto& ids = c_.clusterPolicies()[tr.policy].peerIds[static_cast<int>(d)][tr.rule];
    for (size_t k = 0; k < rule.peers.size(); ++k) {
      if (ids[k] != CompiledClusterPolicy::kNotSelector) {
        orInto(peers, selectorBits(ids[k]));
      } else if (const auto* networks = std::get_if<NetworksPeer>(&rule.peers[k])) {
        for (PodId p = 0; p < n_; ++p) {
          const IpAddress* ip = c_.pod(p).address(family_);
          if (ip && std::any_of(networks->cidrs.begin(), networks->cidrs.end(),
                                [&](const Cidr& cidr) { return cidr.contains(*ip); }))
            peers[p / 64] |= uint64_t{1} << (p % 64);
        }
      }  // nodes, domain names and unknown peers hold no pod
    }
    return peers;
  }

  // The far ends one cluster policy rule matches on the queried port: its peers, narrowed by its ports.
  // `dst`: the destination pod for an ingress rule (its ports resolve there); nullptr for egress, where named
  // ports resolve on each peer (that narrowing is computed once per rule too).
  const Bits& clusterRuleBits(const TierRule& tr, Direction d, const Pod* dst) {
    const ClusterRule& rule = c_.clusterPolicies()[tr.policy].policy->rules(d)[tr.rule];
    const Bits& peers = clusterPeerBits(tr, d);
    if (rule.deniesAll() || rule.ports.empty()) return peers;
    if (dst) {
      bool admits = std::any_of(rule.ports.begin(), rule.ports.end(), [&](const PortSpec& spec) {
        return portAdmits(spec, protocol_, port_, dst);
      });
      return admits ? peers : zeros_;
    }
    auto& slot = clusterEgressBits_[{tr.policy, tr.rule}];
    if (slot) return *slot;
    Bits ports(words_, 0);
    for (const PortSpec& spec : rule.ports) {
      if (!std::holds_alternative<std::string>(spec.port)) {
        if (portAdmits(spec, protocol_, port_, nullptr)) return *(slot = std::make_unique<Bits>(peers));
      } else if (spec.protocol == protocol_) {
        orInto(ports, namedPortBits(std::get<std::string>(spec.port)));
      }
    }
    for (size_t w = 0; w < words_; ++w)
      ports[w] &= peers[w];
    return *(slot = std::make_unique<Bits>(std::move(ports)));
  }

  // The far ends a side admits, tier by tier: the Admin rules in order (Accept admits, Deny refuses, Pass
  // hands on), then NetworkPolicy's answer `np` when it isolates the pod (nullptr: it does not), else the
  // Baseline rules, and what is left is allowed.
  Bits tiered(Direction d, const std::vector<TierRule>& admin, const Bits* np,
              const std::vector<TierRule>& baseline, const Pod* dst) {
    Bits allowed(words_, 0), open = ones_, passed(words_, 0);
    auto walk = [&](const std::vector<TierRule>& rules, bool passAllows) {
      for (const TierRule& tr : rules) {
        const Bits& m = clusterRuleBits(tr, d, dst);
        const ClusterRule& rule = c_.clusterPolicies()[tr.policy].policy->rules(d)[tr.rule];
        Action action = rule.deniesAll() ? Action::kDeny : rule.action;
        for (size_t w = 0; w < words_; ++w) {
          uint64_t hit = m[w] & open[w];
          if (action == Action::kAccept || (action == Action::kPass && passAllows)) allowed[w] |= hit;
          if (action == Action::kPass && !passAllows) passed[w] |= hit;
          open[w] &= ~hit;
        }
      }
    };
    walk(admin, false);
    orInto(open, passed);
    if (np) {
      for (size_t w = 0; w < words_; ++w)
        allowed[w] |= (*np)[w] & open[w];
      return allowed;
    }
    walk(baseline, true);
    orInto(allowed, open);
    return allowed;
  }

  std::vector<TierRule> tierRules(PodId pod, Direction d, Tier t) const {
    std::vector<TierRule> out;
    for (uint32_t policyId : c_.tier(pod, d, t)) {
      auto n = static_cast<uint32_t>(c_.clusterPolicies()[policyId].policy->rules(d).size());
      for (uint32_t r = 0; r < n; ++r)
        out.push_back({policyId, r});
    }
    return out;
  }

  // Row j: the sources that j's ingress admits. Pods whose admitting rules are the same share one
  // computation.
  BitMatrix ingressRows() {
    BitMatrix rows(n_);
    using Key = std::tuple<bool, std::vector<uint32_t>, std::vector<TierRule>, std::vector<TierRule>>;
    std::map<Key, Bits> memo;
    for (PodId j = 0; j < n_; ++j) {
      uint64_t* out = rows.row(j);
      bool isolated = c_.isolated(j, Direction::kIngress);
      auto admin = tierRules(j, Direction::kIngress, Tier::kAdmin);
      auto baseline = isolated ? std::vector<TierRule>{} : tierRules(j, Direction::kIngress, Tier::kBaseline);
      if (!isolated && admin.empty() && baseline.empty()) {
        std::copy(ones_.begin(), ones_.end(), out);
        continue;
      }
      std::vector<uint32_t> admitting;
      if (isolated)
        for (uint32_t policyId : c_.isolating(j, Direction::kIngress))
          for (uint32_t ruleId : c_.policies()[policyId].ingressRules)
            if (c_.portMatch(c_.rules()[ruleId], protocol_, port_, &c_.pod(j))) admitting.push_back(ruleId);
      // A cluster rule whose ports do not admit the port on j matches nothing here (unless it fails closed,
      // denying everything): leave it out of the key.
      auto onPort = [&](std::vector<TierRule>& rules) {
        std::erase_if(rules, [&](const TierRule& tr) {
          const ClusterRule& rule =
              c_.clusterPolicies()[tr.policy].policy->rules(Direction::kIngress)[tr.rule];
          bool failsClosed = rule.deniesAll();
          return !failsClosed && !rule.ports.empty() &&
                 std::none_of(rule.ports.begin(), rule.ports.end(), [&](const PortSpec& spec) {
                   return portAdmits(spec, protocol_, port_, &c_.pod(j));
                 });
        });
      };
      onPort(admin);
      onPort(baseline);
      auto [it, inserted] = memo.try_emplace(Key{isolated, admitting, admin, baseline});
      if (inserted) {
        Bits np(words_, 0);
        for (uint32_t ruleId : admitting)
          orInto(np, ruleBits(ruleId));
        it->second = tiered(Direction::kIngress, admin, isolated ? &np : nullptr, baseline, &c_.pod(j));
      }
      std::copy(it->second.begin(), it->second.end(), out);
    }
    return rows;
  }

  // The destinations that i's egress admits. Named ports resolve on each destination, so a rule that admits
  // the port only by name contributes its peers that carry that name with the queried number.
  const Bits& egressRow(PodId i) {
    auto admin = tierRules(i, Direction::kEgress, Tier::kAdmin);
    bool isolated = c_.isolated(i, Direction::kEgress);
    auto baseline = isolated ? std::vector<TierRule>{} : tierRules(i, Direction::kEgress, Tier::kBaseline);
    if (admin.empty() && baseline.empty()) return npEgressRow(i);
    // Isolated with no admitting rule and not isolated both have no contributions: the flag tells them apart.
    auto [it, inserted] =
        tieredEgressMemo_.try_emplace(std::tuple(isolated, isolated ? npKey(i) : NpKey{}, admin, baseline));
    if (inserted)
      it->second = tiered(Direction::kEgress, admin, isolated ? &npEgressRow(i) : nullptr, baseline, nullptr);
    return it->second;
  }

  using NpKey = std::vector<std::pair<uint32_t, int>>;  // (rule, -1 all peers | index of a named port entry)

  NpKey npKey(PodId i) const {
    NpKey contributions;
    for (uint32_t policyId : c_.isolating(i, Direction::kEgress)) {
      for (uint32_t ruleId : c_.policies()[policyId].egressRules) {
        const CompiledRule& rule = c_.rules()[ruleId];
        if (c_.portMatch(rule, protocol_, port_, nullptr)) {
          contributions.emplace_back(ruleId, -1);
          continue;
        }
        const auto& ports = rule.rule->ports;
        for (size_t k = 0; k < ports.size(); ++k)
          if (ports[k].protocol == protocol_ && std::holds_alternative<std::string>(ports[k].port))
            contributions.emplace_back(ruleId, static_cast<int>(k));
      }
    }
    return contributions;
  }

  // The destinations that NetworkPolicy admits from i (every pod when it does not isolate i).
  const Bits& npEgressRow(PodId i) {
    if (!c_.isolated(i, Direction::kEgress)) return ones_;
    auto [it, inserted] = egressMemo_.try_emplace(npKey(i));
    if (inserted) {
      it->second.assign(words_, 0);
      for (auto [ruleId, entry] : it->first) {
        const Bits& peers = ruleBits(ruleId);
        if (entry < 0) {
          orInto(it->second, peers);
        } else {
          const Bits& named =
              namedPortBits(std::get<std::string>(c_.rules()[ruleId].rule->ports[entry].port));
          for (size_t w = 0; w < words_; ++w)
            it->second[w] |= peers[w] & named[w];
        }
      }
    }
    return it->second;
  }

  const Compiled& c_;
  size_t n_, words_;
  Protocol protocol_;
  uint16_t port_;
  Family family_ = Family::kV4;
  Bits ones_;
  std::map<uint32_t, std::unique_ptr<Bits>> selectorBits_, blockBits_, ruleBits_;
  std::map<std::string, std::unique_ptr<Bits>> namedPortBits_;
  std::map<std::tuple<uint32_t, uint32_t, Direction>, std::unique_ptr<Bits>> clusterPeerBits_;
  std::map<std::pair<uint32_t, uint32_t>, std::unique_ptr<Bits>> clusterEgressBits_;  // egress rules, by port
  Bits zeros_;
  std::map<std::vector<std::pair<uint32_t, int>>, Bits> egressMemo_;
  std::map<std::tuple<bool, NpKey, std::vector<TierRule>, std::vector<TierRule>>, Bits> tieredEgressMemo_;
};

}  // namespace

BitMatrix BitMatrix::transposed() const {
  BitMatrix t(n_);
  uint64_t block[64];
  for (size_t bi = 0; bi < words_; ++bi) {
    for (size_t bj = 0; bj < words_; ++bj) {
      for (size_t r = 0; r < 64; ++r) {
        size_t row = bi * 64 + r;
        block[r] = row < n_ ? bits_[row * words_ + bj] : 0;
      }
      transpose64(block);
      for (size_t r = 0; r < 64; ++r) {
        size_t row = bj * 64 + r;
        if (row < n_) t.bits_[row * words_ + bi] = block[r];
      }
    }
  }
  return t;
}

BitMatrix reachability(const Compiled& compiled, Protocol protocol, uint16_t port) {
  return MatrixBuilder(compiled, protocol, port).build();
}

ReachabilityDiff reachabilityDiff(const Compiled& b, const Compiled& a, Protocol protocol, uint16_t port) {
  BitMatrix mb = reachability(b, protocol, port), ma = reachability(a, protocol, port);
  ReachabilityDiff diff;
  // Pods present on both sides, as (id before, id after); both lists are sorted by namespace/name.
  std::vector<std::pair<PodId, PodId>> common;
  for (PodId i = 0, j = 0; i < b.pods().size() || j < a.pods().size();) {
    if (j == a.pods().size() || (i < b.pods().size() && b.pod(i).key() < a.pod(j).key())) {
      diff.removedPods.push_back(b.pod(i++).key());
    } else if (i == b.pods().size() || a.pod(j).key() < b.pod(i).key()) {
      diff.addedPods.push_back(a.pod(j++).key());
    } else {
      common.emplace_back(i++, j++);
    }
  }
  for (auto [bi, ai] : common)
    for (auto [bj, aj] : common)
      if (mb.get(bi, bj) != ma.get(ai, aj))
        diff.flips.push_back({b.pod(bi).key(), b.pod(bj).key(), ma.get(ai, aj)});
  return diff;
}

}  // namespace nftpol::policy
