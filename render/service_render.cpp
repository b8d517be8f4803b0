#include "service_render.h"

#include <algorithm>
#include <map>

#include "chain_builder.h"

namespace nftpol::render::detail {

namespace {

using policy::Backend;
using policy::ResolvedServicePort;
using policy::TrafficPolicy;

constexpr size_t kCommentMax = 127;

Verdict jump(const std::string& chain) {
  return Verdict{Verdict::Kind::kJump, chain};
}

// A connection to a service port whose backends are gone is refused at once rather than left to time out.
std::vector<Rule> rejects(const Match& key) {
  return {Rule{{key, PortIs{{Protocol::kTCP, 0, 65535}}}, Reject{.tcpReset = true}, ""},
          Rule{{key},
               Reject{.family = std::holds_alternative<DestinationPortInSet>(key)
                                    ? std::optional<Family>(std::get<DestinationPortInSet>(key).family)
                                    : std::nullopt},
               ""}};
}

// One service's piece: its chains and sets, and its entries in the shared maps and reject sets.
class ServiceRenderer {
 public:
  explicit ServiceRenderer(const std::string& node) : node_(node) {}

  ServicePiece piece(const std::vector<const policy::ResolvedServicePort*>& ports) {
    ServicePiece out;
    for (const auto* pp : ports) {
      const auto& p = *pp;
      out.service = p.service->key();
      const auto& port = p.port();
      auto internal = p.backendsFor(false, node_);
      auto external = p.backendsFor(true, node_);
      auto place = [&](const std::string& chain, const std::string& map, const std::string& reject, Key key) {
        if (chain.empty())
          out.rejected.push_back({reject, key, toString(key), ""});
        else
          out.entries.push_back({map, key, toString(key), chain});
      };
      for (const auto& ip : p.service->clusterIPs)
        place(
            serviceChain(p, ip.family(), internal, p.service->internalTrafficPolicy == TrafficPolicy::kLocal),
            std::string("service-ips") + familySuffix(ip.family()),
            std::string("no-endpoints") + familySuffix(ip.family()),
            AddressProtocolPort{ip, port.protocol, port.port});
      for (const auto* list : {&p.service->externalIPs, &p.service->loadBalancerIPs})
        for (const auto& ip : *list)
          place(externalChain(p, ip.family(), external),
                std::string("service-ips") + familySuffix(ip.family()),
                std::string("no-endpoints") + familySuffix(ip.family()),
                AddressProtocolPort{ip, port.protocol, port.port});
      if (port.nodePort)
        place(nodePortChain(p, external), "service-nodeports", "no-endpoint-nodeports",
              ProtocolPort{port.protocol, port.nodePort});
    }
    for (auto& [name, c] : chains_)
      out.chains.push_back(std::move(c));
    for (auto& [name, set] : sets_)
      out.sets.push_back(std::move(set));
    for (auto& [name, map] : maps_)
      out.maps.push_back(std::move(map));
    return out;
  }

 private:
  static std::vector<const Backend*> ofFamily(const std::vector<const Backend*>& backends, Family f) {
    std::vector<const Backend*> out;
    for (const Backend* b : backends)
      if (b->address.family() == f) out.push_back(b);
    return out;
  }

  // The chain that translates to one backend. Equal content shares a chain across services.
  std::string endpointChain(const ResolvedServicePort& p, const Backend& b, const std::string& affinitySet) {
    Family f = b.address.family();
    Chain c;
    // A pod reaching itself through the service: masquerade, or its reply would bypass the translation; and
    // marked as self, which filter-forward lets through whatever the pod's own policies say.
    c.rules.push_back({{AddressIs{f, Field::kSource, b.address}},
                       Continue{},
                       "",
                       {SetMarkBit{kMasqueradeMark | kSelfMark}}});
    if (!affinitySet.empty())
      c.rules.push_back({{}, Continue{}, "", {UpdateAddressSet{f, Field::kSource, affinitySet}}});
    c.rules.push_back({{PortIs{{p.port().protocol, 0, 65535}}}, Dnat{b.address, b.port}, ""});
    // Named by what decides its rules (not by their text, which costs more to make than the rules do).
    std::string identity = std::string(nftKeyword(p.port().protocol)) + " " + b.address.toString() + " " +
                           std::to_string(b.port) + " " + affinitySet;
    c.name = "ep-" + contentHash(identity);
    claimName(names_, c.name, identity);
    if (chains_.count(c.name)) return c.name;
    // From what the name derives from only: the kernel keeps a chain's comment from its creation, and two
    // services sharing the chain may name its pod differently (or not at all).
    c.comment = b.address.toString() + " port " + std::to_string(b.port) + " (" +
                std::string(nftKeyword(p.port().protocol)) + ")";
    chains_.try_emplace(c.name, c);
    return c.name;
  }

  // Random balancing over `backends` of family f, after the session-affinity lookups when the service asks
  // for ClientIP affinity. Empty when there is no backend. Named from the service port and the backend set's
  // kind (all of them, or the node's own), so a backend change changes map elements, not names.
  std::string serviceChain(const ResolvedServicePort& p, Family f, const std::vector<const Backend*>& all,
                           bool local) {
    auto backends = ofFamily(all, f);
    if (backends.empty()) return "";
    std::string identity = p.name() + familySuffix(f) + (local ? "/local" : "");
    std::string name = "svc-" + contentHash(identity) + familySuffix(f);
    claimName(names_, name, identity);
    if (chains_.count(name)) return name;
    // The backend count goes on the balancing rule, which a new count replaces, not on the chain, whose
    // comment the kernel keeps from its creation.
    Chain c{.name = name};
    c.comment = cut(p.name() + (local ? " (this node's backends)" : ""), kCommentMax);
    // The modulus is in the map's name: the kernel keeps it in the map's description, which a new modulus
    // would leave stale, so a change of backend count makes a new map.
    Map map{
        .name = "backends-" + contentHash(identity) + familySuffix(f) + "-" + std::to_string(backends.size()),
        .key = KeyType::random(static_cast<uint32_t>(backends.size()))};
    map.comment = cut(p.name() + ": random backend", kCommentMax);
    for (size_t i = 0; i < backends.size(); ++i) {
      std::string affinity;
      if (p.service->affinitySeconds) {
        // The timeout is part of the name: a set's timeout cannot change in place.
        std::string clients = identity + "/" + backends[i]->address.toString() + ":" +
                              std::to_string(backends[i]->port) + "/" +
                              std::to_string(*p.service->affinitySeconds);
        affinity = "aff-" + contentHash(clients) + familySuffix(f);
        claimName(names_, affinity, clients);
        Set s{.name = affinity,
              .key = KeyType::address(f),
              .dynamic = true,
              .timeoutSeconds = *p.service->affinitySeconds};
        s.comment = cut(p.name() + ": clients of " + backends[i]->address.toString(), kCommentMax);
        sets_.try_emplace(affinity, std::move(s));
      }
      std::string ep = endpointChain(p, *backends[i], affinity);
      if (!affinity.empty()) c.rules.push_back({{AddressInSet{f, Field::kSource, affinity}}, jump(ep), ""});
      map.verdicts.emplace_back(Slot{static_cast<uint32_t>(i)}, ep);
    }
    c.rules.push_back(
        {{},
         VerdictMapLookup{
             .family = f, .map = map.name, .key = VerdictMapLookup::Key::kRandom, .modulus = map.key.modulus},
         std::to_string(backends.size()) + " backend" + (backends.size() == 1 ? "" : "s")});
    maps_.try_emplace(map.name, std::move(map));
    chains_.emplace(name, std::move(c));
    return name;
  }

  // Traffic from outside the cluster's service addresses: external IPs, load-balancer IPs, node ports. With
  // the Cluster policy it may land on another node, so it is masqueraded; with Local it keeps its source and
  // only this node's backends take it.
  std::string externalChain(const ResolvedServicePort& p, Family f,
                            const std::vector<const Backend*>& backends) {
    bool masquerade = p.service->externalTrafficPolicy == TrafficPolicy::kCluster;
    std::string target = serviceChain(p, f, backends, !masquerade);
    if (target.empty()) return "";
    std::string identity = p.name() + familySuffix(f) + "/external";
    std::string name = "ext-" + contentHash(identity) + familySuffix(f);
    claimName(names_, name, identity);
    if (chains_.count(name)) return name;
    Chain c{.name = name};
    c.comment = cut(p.name() + ": from outside", kCommentMax);
    Rule r{{}, jump(target), masquerade ? "masqueraded" : "source kept (Local)"};
    if (masquerade) r.statements.push_back(SetMarkBit{kMasqueradeMark});
    c.rules.push_back(std::move(r));
    chains_.emplace(name, std::move(c));
    return name;
  }

  // A node port takes both families on the node's addresses: one rule per family that has a backend.
  std::string nodePortChain(const ResolvedServicePort& p, const std::vector<const Backend*>& backends) {
    Chain c{.name = "nodeport-" + contentHash(p.name() + "/nodeport")};
    claimName(names_, c.name, p.name() + "/nodeport");
    c.comment = cut(p.name() + ": node port", kCommentMax);
    for (Family f : {Family::kV4, Family::kV6}) {
      std::string ext = externalChain(p, f, backends);
      if (!ext.empty())
        c.rules.push_back({{FamilyIs{f}}, jump(ext), "node port " + std::to_string(p.port().nodePort)});
    }
    if (c.rules.empty()) return "";
    std::string name = c.name;
    chains_.try_emplace(name, std::move(c));
    return name;
  }

  std::string node_;
  std::map<std::string, Chain> chains_;
  std::map<std::string, Set> sets_;
  std::map<std::string, Map> maps_;
  std::map<std::string, std::string> names_;  // -> what each name was hashed from
};

}  // namespace

ServicePiece renderService(const std::vector<const policy::ResolvedServicePort*>& ports,
                           const std::string& node) {
  return ServiceRenderer(node).piece(ports);
}

ServiceParts combine(std::vector<const ServicePiece*> pieces) {
  ServiceParts parts;
  if (pieces.empty()) return parts;
  // In service order, so that a chain two services share (an endpoint's) is the same whatever the order of
  // arrival; equal names have equal rules.
  std::sort(pieces.begin(), pieces.end(),
            [](const auto* a, const auto* b) { return a->service < b->service; });
  std::map<std::string, std::vector<const ServicePiece::Shared*>> shared;  // map or set -> its elements
  std::map<std::string, const Chain*> chains;
  std::map<std::string, const Set*> sets;
  std::map<std::string, const Map*> ownMaps;
  for (const auto* piece : pieces) {
    for (const auto* list : {&piece->entries, &piece->rejected})
      for (const auto& e : *list)
        shared[e.name].push_back(&e);
    // Across services only endpoint chains are shared, and a name stands for one content.
    for (const auto& c : piece->chains)
      putOnce(chains, c.name, &c);
    for (const auto& set : piece->sets)
      putOnce(sets, set.name, &set);
    for (const auto& map : piece->maps)
      putOnce(ownMaps, map.name, &map);
  }
  // A shared map's or set's elements in the order of their text, each once.
  auto ordered = [&](const std::string& name) {
    auto& v = shared[name];
    auto text = [](const auto* e) { return std::tie(e->text, e->chain); };
    std::sort(v.begin(), v.end(), [&](const auto* a, const auto* b) { return text(a) < text(b); });
    v.erase(std::unique(v.begin(), v.end(), [&](const auto* a, const auto* b) { return text(a) == text(b); }),
            v.end());
    return v;
  };
  auto verdicts = [&](const std::string& name) {
    std::vector<std::pair<Key, std::string>> out;
    for (const auto* e : ordered(name))
      out.emplace_back(e->key, e->chain);
    return out;
  };
  auto keys = [&](const std::string& name) {
    std::vector<Key> out;
    for (const auto* e : ordered(name))
      out.push_back(e->key);
    return out;
  };
  for (Family f : {Family::kV4, Family::kV6}) {
    std::string suffix = familySuffix(f);
    Map ips{.name = "service-ips" + suffix, .key = KeyType::addressProtocolPort(f)};
    ips.comment = "service address . protocol . port -> its service chain";
    ips.verdicts = verdicts(ips.name);
    parts.maps.push_back(std::move(ips));
    Set none{.name = "no-endpoints" + suffix, .key = KeyType::addressProtocolPort(f)};
    none.comment = "service address . protocol . port without a backend: rejected";
    none.elements = keys(none.name);
    parts.sets.push_back(std::move(none));
  }
  Map nodePorts{.name = "service-nodeports", .key = KeyType::protocolPort()};
  nodePorts.comment = "node port -> its service chain";
  nodePorts.verdicts = verdicts("service-nodeports");
  parts.maps.push_back(std::move(nodePorts));
  Set noNodePorts{.name = "no-endpoint-nodeports", .key = KeyType::protocolPort()};
  noNodePorts.comment = "node port without a backend: rejected";
  noNodePorts.elements = keys("no-endpoint-nodeports");
  parts.sets.push_back(std::move(noNodePorts));
  for (const auto& [name, set] : sets)
    parts.sets.push_back(*set);
  for (const auto& [name, map] : ownMaps)
    parts.maps.push_back(*map);

  Chain dispatch{.name = "services", .comment = "service dispatch: one hash lookup per address family"};
  for (Family f : {Family::kV4, Family::kV6})
    dispatch.rules.push_back({{},
                              VerdictMapLookup{.family = f,
                                               .map = std::string("service-ips") + familySuffix(f),
                                               .key = VerdictMapLookup::Key::kAddressProtocolPort},
                              ""});
  dispatch.rules.push_back(
      {{},
       VerdictMapLookup{.map = "service-nodeports", .key = VerdictMapLookup::Key::kLocalProtocolPort},
       ""});
  parts.chains.push_back(std::move(dispatch));
  for (const auto& [name, c] : chains)
    parts.chains.push_back(*c);

  std::vector<Rule> addressRejects, nodePortRejects;
  for (Family f : {Family::kV4, Family::kV6})
    for (auto& r : rejects(DestinationPortInSet{f, std::string("no-endpoints") + familySuffix(f)}))
      addressRejects.push_back(std::move(r));
  nodePortRejects = rejects(LocalProtocolPortInSet{"no-endpoint-nodeports"});
  parts.forwardRules = {Rule{
      {MarkHas{kSelfMark}}, Verdict{Verdict::Kind::kAccept, ""}, "a pod reaching itself through a service"}};
  parts.forwardRules.insert(parts.forwardRules.end(), addressRejects.begin(), addressRejects.end());

  auto base = [](const char* name, ChainType type, Hook hook, Priority priority) {
    return Chain{.name = name, .base = BaseChain{type, hook, priority, ChainPolicy::kAccept}};
  };
  Chain input = base("filter-input", ChainType::kFilter, Hook::kInput, Priority::kFilter);
  input.comment = "service ports without a backend, addressed to the node";
  input.rules = addressRejects;
  input.rules.insert(input.rules.end(), nodePortRejects.begin(), nodePortRejects.end());
  Chain output = base("filter-output", ChainType::kFilter, Hook::kOutput, Priority::kFilter);
  output.comment = "service ports without a backend, from the node";
  output.rules = addressRejects;
  Chain natOutput = base("nat-output", ChainType::kNat, Hook::kOutput, Priority::kDstNat);
  natOutput.comment = "service NAT for connections from the node";
  natOutput.rules.push_back({{}, jump("services"), ""});
  Chain postrouting = base("nat-postrouting", ChainType::kNat, Hook::kPostrouting, Priority::kSrcNat);
  postrouting.comment = "masquerade what service NAT marked: hairpin and external traffic";
  postrouting.rules.push_back({{MarkHas{kMasqueradeMark}}, Masquerade{}, ""});
  Chain prerouting = base("nat-prerouting", ChainType::kNat, Hook::kPrerouting, Priority::kDstNat);
  prerouting.comment = "service NAT for connections from pods and from outside";
  prerouting.rules.push_back({{}, jump("services"), ""});
  parts.baseChains = {std::move(input), std::move(output), std::move(natOutput), std::move(postrouting),
                      std::move(prerouting)};
  return parts;
}

}  // namespace nftpol::render::detail
