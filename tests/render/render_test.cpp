// The renderer: golden text, the packet tracer against can-reach on every pod pair, determinism, ranges.
#include <algorithm>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "chain_builder.h"
#include "generator.h"
#include "nftpol/nft/tracer.h"
#include "nftpol/policy/loader.h"
#include "nftpol/policy/reach.h"
#include "nftpol/render/render.h"

using namespace nftpol;
using namespace nftpol::nft;
using namespace nftpol::policy;

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The tracer against can-reach on `node`: every pod pair with an end on the node, and every local pod with
// each of `outside` both ways, on each port (UDP for 53 and 5050, TCP otherwise). Counts what it checked,
// what was allowed and what disagreed (each printed).
struct PairCheck {
  size_t checked = 0, allowed = 0, mismatches = 0;
};
PairCheck checkPairs(const Compiled& c, const Table& table, const std::string& node,
                     const std::vector<uint16_t>& ports, const std::vector<IpAddress>& outside = {}) {
  PairCheck r;
  auto check = [&](const Endpoint& from, const Endpoint& to, Protocol protocol, uint16_t port, bool srcLocal,
                   bool dstLocal, const std::string& what) {
    for (const policy::Verdict& v : canReach(c, {from, to, protocol, port})) {
      // This node enforces the egress of its own pods and the ingress of its own pods.
      bool expected = (!srcLocal || v.egress.allowed) && (!dstLocal || v.ingress.allowed);
      Trace t = trace(table, {*v.source, *v.destination, protocol, port});
      if (t.accepted != expected) {
        ++r.mismatches;
        UNSCOPED_INFO(what << " " << port << " expected " << expected);
      }
      r.allowed += expected;
      ++r.checked;
    }
  };
  for (uint16_t port : ports) {
    Protocol protocol = port == 53 || port == 5050 ? Protocol::kUDP : Protocol::kTCP;
    for (PodId i = 0; i < c.pods().size(); ++i) {
      bool srcLocal = c.pod(i).nodeName == node;
      for (PodId j = 0; j < c.pods().size(); ++j) {
        bool dstLocal = c.pod(j).nodeName == node;
        if (i == j || (!srcLocal && !dstLocal)) continue;
        check(Endpoint::ofPod(i), Endpoint::ofPod(j), protocol, port, srcLocal, dstLocal,
              c.pod(i).key() + " -> " + c.pod(j).key());
      }
      if (!srcLocal) continue;
      for (const IpAddress& ip : outside) {
        if (!c.pod(i).address(ip.family())) continue;
        check(Endpoint::ofPod(i), Endpoint::ofAddress(ip), protocol, port, true, false,
              c.pod(i).key() + " -> " + ip.toString());
        check(Endpoint::ofAddress(ip), Endpoint::ofPod(i), protocol, port, false, true,
              ip.toString() + " -> " + c.pod(i).key());
      }
    }
  }
  return r;
}

}  // namespace

TEST_CASE("render of the samples for node-a equals the reviewed golden text", "[render]") {
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadPaths({NFTPOL_SOURCE_DIR "/samples/cluster"}, state, diagnostics);
  REQUIRE(!hasErrors(diagnostics));
  Compiled c = Compiled::build(state);
  // node-a's pod subnet, as its Node object would give it: the closed-by-default sets are filled.
  CHECK(toText(render::render(c.model(), "node-a", {*Cidr::parse("10.244.1.0/24")})) ==
        readFile(NFTPOL_SOURCE_DIR "/tests/nft/golden/samples-node-a.nft"));
}

namespace {
// Renders three nodes' tables (with every log rule there is on dual-stack clusters: logging may not change a
// verdict), checks each with checkPairs, and returns how many chains had a name starting with `prefix`.
size_t agreeOnNodes(const Compiled& c, bool dualStack, const std::vector<uint16_t>& ports,
                    const std::vector<IpAddress>& outside, const std::vector<std::string>& prefixes) {
  size_t found = 0;
  for (std::string node : {"node-0", "node-1", "node-7"}) {
    auto flowLog =
        dualStack ? std::optional(render::FlowLogOptions{.group = 7, .allowed = true}) : std::nullopt;
    Table table = render::render(c.model(), node, {}, flowLog);
    for (const Chain& ch : table.chains)
      found += std::any_of(prefixes.begin(), prefixes.end(),
                           [&](const auto& p) { return ch.name.starts_with(p); });
    PairCheck r = checkPairs(c, table, node, ports, outside);
    INFO(node << (dualStack ? " dual-stack" : " IPv4") << ": " << r.checked << " checked, " << r.allowed
              << " allowed");
    CHECK(r.checked > 1000);
    CHECK(r.allowed > 0);
    CHECK(r.allowed < r.checked);
    CHECK(r.mismatches == 0);
  }
  return found;
}
}  // namespace

TEST_CASE("the rendered rules admit exactly what can-reach admits, on every pair", "[render][tracer]") {
  for (bool dualStack : {false, true}) {
    ClusterState state = bench::generateCluster({.namespaces = 6,
                                                 .pods = 150,
                                                 .policies = 50,
                                                 .seed = dualStack ? 21u : 22u,
                                                 .dualStack = dualStack});
    // A quarter of the dual-stack cluster's policies in audit mode (their audit chains in the table):
    // auditing may not change a verdict either.
    if (dualStack) {
      size_t i = 0;
      for (policy::NetworkPolicy p : std::vector(state.policies()))
        if (i++ % 4 == 0) {
          p.audit = true;
          state.upsert(std::move(p));
        }
    }
    Compiled c = Compiled::build(state);
    size_t auditChains = agreeOnNodes(c, dualStack, {53, 443, 5432, 8050, 8080, 9090}, {}, {"audit-"});
    CHECK((auditChains > 0) == dualStack);
  }
}

TEST_CASE("with cluster policies of both tiers, the rendered rules admit exactly what can-reach admits",
          "[render][tracer][cluster]") {
  for (bool dualStack : {false, true}) {
    ClusterState state = bench::generateCluster({.namespaces = 6,
                                                 .pods = 150,
                                                 .policies = 30,
                                                 .seed = dualStack ? 31u : 32u,
                                                 .dualStack = dualStack,
                                                 .clusterPolicies = 40});
    Compiled c = Compiled::build(state);
    // Outside the pods: two Nodes' addresses (an infra one and a worker, for the nodes peers), addresses in
    // and out of the generated networks peers.
    std::vector<IpAddress> outside;
    for (const char* text :
         {"192.168.0.1", "192.168.0.2", "10.200.0.9", "172.16.3.4", "8.8.8.8", "fd00::9999"})
      outside.push_back(*IpAddress::parse(text));
    CHECK(agreeOnNodes(c, dualStack, {53, 80, 443, 5050, 5432, 8080, 9090}, outside,
                       {"admin-", "baseline-"}) > 0);
  }
}

TEST_CASE("outside addresses: ipBlocks and all-peer rules in the rendered table", "[render][tracer]") {
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadPaths({NFTPOL_SOURCE_DIR "/samples/cluster"}, state, diagnostics);
  REQUIRE(!hasErrors(diagnostics));
  Compiled c = Compiled::build(state);
  Table t = render::render(c.model(), "node-a");
  auto api = *IpAddress::parse("10.244.1.11");
  CHECK(trace(t, {api, *IpAddress::parse("93.184.216.34"), Protocol::kTCP, 443}).accepted);   // 0.0.0.0/0
  CHECK_FALSE(trace(t, {api, *IpAddress::parse("10.9.9.9"), Protocol::kTCP, 443}).accepted);  // except 10/8
  CHECK_FALSE(trace(t, {api, *IpAddress::parse("93.184.216.34"), Protocol::kTCP, 80}).accepted);
  auto frontend = *IpAddress::parse("10.244.1.10");
  CHECK(trace(t, {frontend, *IpAddress::parse("192.0.2.53"), Protocol::kUDP, 53}).accepted);  // DNS anywhere
}

TEST_CASE("an address of the node's pod subnets that no local pod holds is closed both ways",
          "[render][tracer]") {
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadPaths({NFTPOL_SOURCE_DIR "/samples/cluster"}, state, diagnostics);
  REQUIRE(!hasErrors(diagnostics));
  Compiled c = Compiled::build(state);
  auto ip = [](const char* text) { return *IpAddress::parse(text); };
  auto monitoring = ip("10.244.1.30"), stranger = ip("10.244.1.99"), remote = ip("10.244.2.20");
  // Without the node's subnets nothing is closed: the table of before.
  Table open = render::render(c.model(), "node-a");
  CHECK(trace(open, {stranger, remote, Protocol::kTCP, 80}).accepted);
  Table t = render::render(c.model(), "node-a", {*Cidr::parse("10.244.1.0/24")});
  CHECK_FALSE(trace(t, {stranger, remote, Protocol::kTCP, 80}).accepted);
  CHECK_FALSE(trace(t, {remote, stranger, Protocol::kTCP, 80}).accepted);
  // A pod no policy selects is programmed like any other: open.
  CHECK(trace(t, {monitoring, remote, Protocol::kTCP, 80}).accepted);
  CHECK(trace(t, {remote, monitoring, Protocol::kTCP, 80}).accepted);
  // Other nodes' subnets are theirs to close.
  CHECK(trace(t, {remote, ip("10.244.2.99"), Protocol::kTCP, 80}).accepted);
  // A pod that is not running any more holds its address no longer.
  ClusterState finished = state;
  policy::Pod pod = *finished.findPod("monitoring", "prometheus-0");
  pod.phase = policy::PodPhase::kSucceeded;
  finished.upsert(pod);
  Compiled after = Compiled::build(finished);
  Table closed = render::render(after.model(), "node-a", {*Cidr::parse("10.244.1.0/24")});
  CHECK_FALSE(trace(closed, {monitoring, remote, Protocol::kTCP, 80}).accepted);
}

TEST_CASE(
    "the node's pod subnets merge where they nest or touch: the kernel refuses a range starting where "
    "another ends",
    "[render]") {
  auto cidr = [](const char* text) { return *Cidr::parse(text); };
  auto range = [](const Key& k) { return toString(k); };
  auto v4 =
      nft::unionElements(Family::kV4, {cidr("10.244.2.0/24"), cidr("10.244.1.0/24"), cidr("10.244.1.128/25"),
                                       cidr("10.244.4.0/24"), cidr("fd00::/64")});
  REQUIRE(v4.size() == 2);
  CHECK(range(v4[0]) == "10.244.1.0-10.244.2.255");
  CHECK(range(v4[1]) == "10.244.4.0/24");
  auto all = nft::unionElements(Family::kV4, {cidr("0.0.0.0/1"), cidr("128.0.0.0/1"), cidr("10.0.0.0/8")});
  REQUIRE(all.size() == 1);
  CHECK(range(all[0]) == "0.0.0.0/0");
  CHECK(nft::unionElements(Family::kV6, {cidr("10.0.0.0/8")}).empty());
}

TEST_CASE("a log rule sits before each decision it reports, names its chain, and has no verdict",
          "[render]") {
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadPaths({NFTPOL_SOURCE_DIR "/samples/cluster"}, state, diagnostics);
  REQUIRE(!hasErrors(diagnostics));
  Model model = Model::of(state);
  Table plain = render::render(model, "node-a", {}, std::nullopt);
  for (bool allowed : {false, true}) {
    Table logged =
        render::render(model, "node-a", {}, render::FlowLogOptions{.group = 9, .allowed = allowed});
    size_t denies = 0, allows = 0;
    for (const Chain& chain : logged.chains) {
      if (chain.name.starts_with("ingress-") || chain.name.starts_with("egress-")) {
        // The same chain, by name, as without the log; its hash is what the prefixes name.
        const Chain* same = plain.findChain(chain.name);
        REQUIRE(same);
        std::string hash = chain.name.substr(chain.name.find('-') + 1, 16);
        std::vector<nft::Rule> withoutLogs;
        for (size_t i = 0; i < chain.rules.size(); ++i) {
          const nft::Rule& r = chain.rules[i];
          if (r.statements.empty() || !std::holds_alternative<LogToGroup>(r.statements[0])) {
            withoutLogs.push_back(r);
            continue;
          }
          CHECK(std::holds_alternative<Continue>(r.action));
          const auto& log = std::get<LogToGroup>(r.statements[0]);
          CHECK(log.group == 9);
          auto decision = render::parseFlowLogPrefix(log.prefix);
          REQUIRE(decision);
          CHECK(decision->chainHash == hash);
          CHECK(decision->side == (chain.name.starts_with("ingress-")
                                       ? render::LoggedDecision::Side::kIngress
                                       : render::LoggedDecision::Side::kEgress));
          // The next rule is the decision, with the same matches.
          REQUIRE(i + 1 < chain.rules.size());
          const nft::Rule& next = chain.rules[i + 1];
          CHECK(next.matches == r.matches);
          const auto* v = std::get_if<nft::Verdict>(&next.action);
          REQUIRE(v);
          CHECK(v->kind == (decision->allowed ? nft::Verdict::Kind::kAccept : nft::Verdict::Kind::kDrop));
          (decision->allowed ? allows : denies) += 1;
        }
        CHECK(withoutLogs == same->rules);
      }
    }
    CHECK(denies == 6);  // every policy chain of node-a ends in a logged default deny
    CHECK((allows > 0) == allowed);
    // The allowed connections no ingress chain decided are logged in forward-allowed, where every such
    // connection ends, and nowhere in filter-forward.
    const Chain* allowedEnd = logged.findChain("forward-allowed");
    REQUIRE(allowedEnd);
    const Chain* forward = logged.findChain("filter-forward");
    REQUIRE(forward);
    CHECK(std::none_of(forward->rules.begin(), forward->rules.end(), [](const nft::Rule& r) {
      return !r.statements.empty() && std::holds_alternative<LogToGroup>(r.statements[0]);
    }));
    size_t endLogs = 0;
    for (const nft::Rule& r : allowedEnd->rules)
      if (!r.statements.empty() && std::holds_alternative<LogToGroup>(r.statements[0])) {
        std::string prefix = std::get<LogToGroup>(r.statements[0]).prefix;
        CHECK((prefix == "nftpol allowed" || prefix == "nftpol egress allowed -"));
        ++endLogs;
      }
    CHECK(endLogs == (allowed ? 4u : 0u));
  }
  // The prefixes read back; anything else is not ours.
  for (const auto& d :
       {render::LoggedDecision{.side = render::LoggedDecision::Side::kEgress, .chainHash = "abc"},
        render::LoggedDecision{
            .side = render::LoggedDecision::Side::kIngress, .allowed = true, .chainHash = "h", .rule = 3},
        render::LoggedDecision{.allowed = true}})
    CHECK(render::parseFlowLogPrefix(render::flowLogPrefix(d)) == d);
  for (const char* bad :
       {"", "nftpol", "nftpol egress", "nftpol sideways denied h", "nftpol egress denied h 2",
        "nftpol ingress allowed h x", "other ingress denied h", "nftpol ingress allowed h -1"})
    CHECK_FALSE(render::parseFlowLogPrefix(bad));
}

TEST_CASE("the same objects in any order render the same table", "[render]") {
  std::string yaml = bench::generateYaml({.namespaces = 5, .pods = 80, .policies = 30, .seed = 5});
  // Split into documents and load them in a shuffled order.
  std::vector<std::string> docs;
  for (size_t pos = 0; pos < yaml.size();) {
    size_t next = yaml.find("\n---\n", pos);
    docs.push_back(yaml.substr(pos, next == std::string::npos ? std::string::npos : next + 1 - pos));
    pos = next == std::string::npos ? yaml.size() : next + 1;
  }
  std::mt19937 rng(3);
  std::vector<std::string> shuffled = docs;
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  auto renderDocs = [](const std::vector<std::string>& parts) {
    ClusterState state;
    std::vector<Diagnostic> diagnostics;
    for (const auto& d : parts)
      loadText(d, "x", state, diagnostics);
    REQUIRE(!hasErrors(diagnostics));
    return toText(render::render(policy::Model::of(state), "node-3"));
  };
  CHECK(shuffled != docs);
  CHECK(renderDocs(docs) == renderDocs(shuffled));
}

TEST_CASE("ipBlock elements are cidr minus except, printed as nft prints them", "[render]") {
  auto block = [](const char* cidr, const std::vector<const char*>& except) {
    IpBlock b{*Cidr::parse(cidr), {}};
    for (const char* e : except)
      b.except.push_back(*Cidr::parse(e));
    std::vector<std::string> text;
    for (const auto& k : blockElements(b.cidr, b.except)) {
      CHECK(std::holds_alternative<AddressRange>(k));
      text.push_back(toString(k));
    }
    return text;
  };
  CHECK(block("10.0.0.0/16", {}) == std::vector<std::string>{"10.0.0.0/16"});
  CHECK(block("10.0.0.0/16", {"10.0.1.0/24"}) ==
        std::vector<std::string>{"10.0.0.0/24", "10.0.2.0-10.0.255.255"});
  CHECK(block("0.0.0.0/0", {"10.0.0.0/8"}) ==
        std::vector<std::string>{"0.0.0.0-9.255.255.255", "11.0.0.0-255.255.255.255"});
  CHECK(block("10.0.0.0/30", {"10.0.0.0/31", "10.0.0.3/32"}) == std::vector<std::string>{"10.0.0.2"});
  CHECK(block("fd00::/64", {"fd00::/65"}) == std::vector<std::string>{"fd00::8000:0:0:0/65"});
  CHECK(block("::/0", {}) == std::vector<std::string>{"::/0"});
}

namespace {

// The 32-bit FNV-1a fold that named sets and chains until 2026-12.
uint32_t oldNameHash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return static_cast<uint32_t>(h ^ (h >> 32));
}

}  // namespace

TEST_CASE(
    "ipBlocks whose texts collided under the old 32-bit names get a set each, and each is enforced as "
    "written",
    "[render][tracer]") {
  struct Expect {
    const char* from;
    const char* to;
    bool allowed;
  };
  struct Pair {
    std::string a, b;              // the blocks as IpBlock::toString() writes them (what names were made of)
    std::string yamlA, yamlB;      // the same blocks in a policy's terms: y/a may reach A, y/b may reach B
    std::vector<Expect> expected;  // y/a is 10.244.0.13, y/b 10.244.0.14
  };
  // The first pair was found in review (one set held only the first block); the second by a search over
  // excepts, so that each block leaves out a pod the other takes in.
  const Pair pairs[] = {
      {"10.102.200.0/25",
       "10.110.21.0/25",
       "{cidr: 10.102.200.0/25}",
       "{cidr: 10.110.21.0/25}",
       {{"10.244.0.13", "10.102.200.1", true},
        {"10.244.0.13", "10.110.21.1", false},
        {"10.244.0.14", "10.110.21.1", true},
        {"10.244.0.14", "10.102.200.1", false}}},
      {"10.244.0.0/16 except 10.244.0.11/32, 10.244.16.206/31",
       "10.244.0.0/16 except 10.244.0.12/32, 10.244.82.151/32",
       "{cidr: 10.244.0.0/16, except: [10.244.0.11/32, 10.244.16.206/31]}",
       "{cidr: 10.244.0.0/16, except: [10.244.0.12/32, 10.244.82.151/32]}",
       {{"10.244.0.13", "10.244.0.11", false},
        {"10.244.0.13", "10.244.0.12", true},
        {"10.244.0.13", "10.244.82.151", true},
        {"10.244.0.14", "10.244.0.12", false},
        {"10.244.0.14", "10.244.0.11", true},
        {"10.244.0.14", "10.244.16.207", true}}},
  };
  auto egress = [](const std::string& name, const std::string& app, const std::string& block) {
    return "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: " + name +
           ", namespace: y}\nspec:\n  podSelector: {matchLabels: {app: " + app +
           "}}\n  policyTypes: [Egress]\n  egress: [{to: [{ipBlock: " + block + "}]}]\n";
  };
  for (const auto& pair : pairs) {
    INFO(pair.a << " and " << pair.b);
    REQUIRE(oldNameHash(pair.a) == oldNameHash(pair.b));
    std::string yaml =
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: y}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: y, labels: {app: a}}\nspec: {nodeName: "
        "n}\n"
        "status: {phase: Running, podIP: 10.244.0.13}\n---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: b, namespace: y, labels: {app: b}}\nspec: {nodeName: "
        "n}\n"
        "status: {phase: Running, podIP: 10.244.0.14}\n" +
        egress("to-a", "a", pair.yamlA) + egress("to-b", "b", pair.yamlB);
    ClusterState state;
    std::vector<Diagnostic> diagnostics;
    loadText(yaml, "collide.yaml", state, diagnostics);
    REQUIRE(!hasErrors(diagnostics));
    Compiled c = Compiled::build(state);
    Table t = render::render(c.model(), "n");
    size_t cidrSets = 0;
    for (const auto& s : t.sets)
      cidrSets += s.name.starts_with("cidr-");
    CHECK(cidrSets == 2);
    for (const auto& e : pair.expected) {
      INFO(e.from << " -> " << e.to);
      auto from = *resolveEndpoint(c, e.from), to = *resolveEndpoint(c, e.to);
      CHECK(anyAllowed(canReach(c, {from, to, Protocol::kTCP, 80})) == e.allowed);  // the simulator
      CHECK(trace(t, {*IpAddress::parse(e.from), *IpAddress::parse(e.to), Protocol::kTCP, 80}).accepted ==
            e.allowed);  // the kernel's rules
    }
  }
}

TEST_CASE("a name that stands for two contents is refused, never shared", "[render]") {
  std::map<std::string, std::string> names;
  render::detail::claimName(names, "cidr-x-v4", "10.0.0.0/8");
  CHECK_NOTHROW(render::detail::claimName(names, "cidr-x-v4", "10.0.0.0/8"));
  CHECK_THROWS_AS(render::detail::claimName(names, "cidr-x-v4", "10.0.0.0/9"), render::NameCollision);
  std::map<std::string, Set> sets;
  render::detail::putOnce(sets, "peer-x-v4",
                          Set{.name = "peer-x-v4", .elements = {*IpAddress::parse("10.0.0.1")}});
  CHECK_NOTHROW(render::detail::putOnce(
      sets, "peer-x-v4", Set{.name = "peer-x-v4", .elements = {*IpAddress::parse("10.0.0.1")}}));
  CHECK_THROWS_AS(
      render::detail::putOnce(sets, "peer-x-v4",
                              Set{.name = "peer-x-v4", .elements = {*IpAddress::parse("10.0.0.2")}}),
      render::NameCollision);
  CHECK(render::detail::contentHash("10.102.200.0/25") != render::detail::contentHash("10.110.21.0/25"));
  CHECK(render::detail::contentHash("").size() == 16);
}
