// The model and the node table kept incrementally against a fresh render: after every change of a random
// sequence (pods relabelled, moved, readdressed, removed and recreated; policies added, removed and
// rewritten; namespaces relabelled and removed; endpoints and services changed), the table kept equals the
// table rendered from scratch, comments included.
#include <algorithm>
#include <catch2/catch.hpp>
#include <random>

#include "generator.h"
#include "nftpol/policy/loader.h"
#include "nftpol/policy/model.h"
#include "nftpol/render/render.h"

using namespace nftpol;
using namespace nftpol::nft;
using namespace nftpol::policy;

namespace {

const std::string kNode = "node-1";
// With the flow log (allowed connections too), whose log rules and audit chains are kept incrementally as
// well; the random sequences run half their seeds with it.
const render::FlowLogOptions kFlowLog{.group = 7, .allowed = true};

Table fullRender(const ClusterState& state, std::optional<render::FlowLogOptions> flowLog = std::nullopt) {
  ClusterState copy = state;
  (void)copy.implyMissingNamespaces();
  return render::render(Model::of(copy), kNode, {}, flowLog);
}

// Names the first difference, so that a failure says where the two tables part.
std::string firstDifference(const Table& a, const Table& b) {
  for (size_t i = 0; i < std::max(a.maps.size(), b.maps.size()); ++i) {
    if (i >= a.maps.size() || i >= b.maps.size()) return "map count";
    if (!(a.maps[i] == b.maps[i])) {
      std::string out = "map " + a.maps[i].name + " / " + b.maps[i].name + ":";
      auto only = [&](const nft::Map& x, const nft::Map& y, const char* tag) {
        for (const auto& v : x.verdicts)
          if (std::find(y.verdicts.begin(), y.verdicts.end(), v) == y.verdicts.end())
            out += tag + toString(v.first) + ":" + v.second;
      };
      only(a.maps[i], b.maps[i], " only in incremental ");
      only(b.maps[i], a.maps[i], " only in full ");
      return out;
    }
  }
  for (size_t i = 0; i < std::max(a.sets.size(), b.sets.size()); ++i) {
    if (i >= a.sets.size() || i >= b.sets.size()) return "set count";
    if (!(a.sets[i] == b.sets[i])) {
      std::string out = "set " + a.sets[i].name + " / " + b.sets[i].name + ":";
      auto only = [&](const Set& x, const Set& y, const char* tag) {
        for (const auto& e : x.elements)
          if (std::find(y.elements.begin(), y.elements.end(), e) == y.elements.end())
            out += tag + toString(e);
      };
      only(a.sets[i], b.sets[i], " only in incremental ");
      only(b.sets[i], a.sets[i], " only in full ");
      if (a.sets[i].comment != b.sets[i].comment)
        out += " comments " + a.sets[i].comment + " | " + b.sets[i].comment;
      return out;
    }
  }
  for (size_t i = 0; i < std::max(a.chains.size(), b.chains.size()); ++i) {
    if (i >= a.chains.size() || i >= b.chains.size()) return "chain count";
    if (!(a.chains[i] == b.chains[i])) return "chain " + a.chains[i].name + " / " + b.chains[i].name;
  }
  return "";
}

template <typename T>
const T& pick(const std::vector<T>& items, std::mt19937_64& rng) {
  return items[std::uniform_int_distribution<size_t>(0, items.size() - 1)(rng)];
}

// A model fed change by change, and the node table it keeps.
// The names of the sets, maps and chains that differ between two tables, or that one has and the other not.
std::set<std::string> changedNames(const Table& a, const Table& b) {
  std::set<std::string> out;
  auto compare = [&](const auto& x, const auto& y) {
    std::map<std::string, const std::decay_t<decltype(x[0])>*> byName;
    for (const auto& o : x)
      byName[o.name] = &o;
    for (const auto& o : y) {
      auto it = byName.find(o.name);
      if (it == byName.end() || !(*it->second == o)) out.insert(o.name);
      if (it != byName.end()) byName.erase(it);
    }
    for (const auto& [name, o] : byName)
      out.insert(name);
  };
  compare(a.sets, b.sets);
  compare(a.maps, b.maps);
  compare(a.chains, b.chains);
  return out;
}

struct Incremental {
  Model model;
  render::NodeTable nodeTable{kNode};
  void setNamespace(const std::string& name, const Namespace* ns) { model.setNamespace(name, ns); }
  void setPod(const std::string& key, const Pod* pod) { model.setPod(key, pod); }
  void setPolicy(const std::string& key, const NetworkPolicy* policy) { model.setPolicy(key, policy); }
  void setService(const std::string& key, const Service* service) { model.setService(key, service); }
  void setEndpointSlice(const std::string& key, const EndpointSlice* slice) {
    model.setEndpointSlice(key, slice);
  }
  void setClusterPolicy(const std::string& key, const ClusterNetworkPolicy* p) {
    model.setClusterPolicy(key, p);
  }
  void setNode(const std::string& name, const Node* node) { model.setNode(name, node); }
  const Table& table() { return nodeTable.update(model, model.takeDirty()); }
};

struct Scenario {
  ClusterState state;
  Incremental incremental;
  std::vector<Pod> removedPods;
  std::vector<NetworkPolicy> removedPolicies;
  std::vector<Namespace> removedNamespaces;
  std::vector<ClusterNetworkPolicy> removedClusterPolicies;
  std::mt19937_64 rng;
  uint32_t nextAddress = 1;

  void tellPod(const Pod& p) { incremental.setPod(p.key(), state.findPod(p.ns, p.name)); }
  void tellPolicy(const NetworkPolicy& p) { incremental.setPolicy(p.key(), state.findPolicy(p.ns, p.name)); }
  void tellNamespace(const std::string& name) { incremental.setNamespace(name, state.findNamespace(name)); }
  void tellClusterPolicy(const ClusterNetworkPolicy& p) {
    incremental.setClusterPolicy(p.key(), state.findClusterPolicy(p.key()));
  }
  void tellNode(const std::string& name) { incremental.setNode(name, state.findNode(name)); }

  // A cluster policy takes another's priority (and so its place in the order) or rules, goes, or comes back.
  std::string changeClusterPolicy() {
    int kind = std::uniform_int_distribution<int>(0, 3)(rng);
    if (kind == 3 && !removedClusterPolicies.empty()) {
      ClusterNetworkPolicy p = removedClusterPolicies.back();
      removedClusterPolicies.pop_back();
      state.upsert(p);
      tellClusterPolicy(p);
      return "restore cluster policy " + p.key();
    }
    ClusterNetworkPolicy p = pick(state.clusterPolicies(), rng);
    const ClusterNetworkPolicy& other = pick(state.clusterPolicies(), rng);
    if (kind == 0) {
      p.priority = other.priority;
    } else if (kind == 1) {
      p.ingressRules = other.ingressRules;
      p.egressRules = other.egressRules;
    } else {
      state.remove("ClusterNetworkPolicy", p.key());
      removedClusterPolicies.push_back(p);
      tellClusterPolicy(p);
      return "remove cluster policy " + p.key();
    }
    state.upsert(p);
    tellClusterPolicy(p);
    return "cluster policy " + p.key() + (kind == 0 ? " takes the priority of " : " takes the rules of ") +
           other.key();
  }

  // A Node takes another's labels (which its nodes peers read), or a new address.
  std::string changeNode() {
    Node node = pick(state.nodes(), rng);
    if (std::uniform_int_distribution<int>(0, 1)(rng)) {
      node.labels = pick(state.nodes(), rng).labels;
    } else {
      node.addresses = {*IpAddress::parse("192.168.9." + std::to_string(nextAddress++ % 250 + 1))};
    }
    state.upsert(node);
    tellNode(node.name);
    return "change node " + node.name;
  }

  // Three services over random pods: one by number, one by a named target port that its slice does not list
  // (so it reads the pods' container ports), one a NodePort.
  void addServices() {
    const std::string ns = state.namespaces().front().name;
    for (int i = 0; i < 3; ++i) {
      Service svc{.ns = ns, .name = "svc-" + std::to_string(i)};
      svc.clusterIPs = {*IpAddress::parse("10.96.0." + std::to_string(10 + i))};
      ServicePort port{.name = "web", .port = 80, .targetPort = uint16_t{8080}};
      if (i == 1) port.targetPort = std::string("http");
      if (i == 2) {
        svc.type = ServiceType::kNodePort;
        port.nodePort = 30080;
      }
      svc.ports = {port};
      state.upsert(svc);
      incremental.setService(svc.key(), state.findService(ns, svc.name));
      EndpointSlice slice{.ns = ns, .name = svc.name + "-a", .serviceName = svc.name};
      if (i != 1) slice.ports = {{.name = "web", .port = 8080}};
      state.upsert(slice);
      resliceService(slice);
    }
  }
  // A service's slice now has the addresses of up to three random pods (ready or not).
  std::string resliceService(EndpointSlice slice) {
    slice.endpoints.clear();
    int n = std::uniform_int_distribution<int>(0, 3)(rng);
    for (int i = 0; i < n && !state.pods().empty(); ++i) {
      const Pod& p = pick(state.pods(), rng);
      if (p.ips.empty() || p.ips.front().family() != Family::kV4) continue;
      slice.endpoints.push_back({.addresses = {p.ips.front()},
                                 .ready = std::uniform_int_distribution<int>(0, 3)(rng) != 0,
                                 .nodeName = p.nodeName,
                                 .podNs = p.ns,
                                 .podName = p.name});
    }
    state.upsert(slice);
    incremental.setEndpointSlice(slice.key(), state.findEndpointSlice(slice.ns, slice.name));
    return "reslice " + slice.key() + " to " + std::to_string(slice.endpoints.size()) + " endpoints";
  }
  static void flip(TrafficPolicy& p) {
    p = p == TrafficPolicy::kLocal ? TrafficPolicy::kCluster : TrafficPolicy::kLocal;
  }
  // A service's node port, traffic policies or affinity change.
  std::string reshapeService(Service svc) {
    switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
      case 0:
        svc.type = ServiceType::kNodePort;
        svc.ports[0].nodePort = static_cast<uint16_t>(30000 + std::uniform_int_distribution<int>(0, 9)(rng));
        break;
      case 1:
        flip(svc.externalTrafficPolicy);
        break;
      case 2:
        flip(svc.internalTrafficPolicy);
        break;
      default:
        svc.affinitySeconds = svc.affinitySeconds ? std::nullopt : std::optional<uint32_t>(600);
    }
    state.upsert(svc);
    incremental.setService(svc.key(), state.findService(svc.ns, svc.name));
    return "reshape service " + svc.key();
  }

  std::string step() {
    int what = std::uniform_int_distribution<int>(0, 16)(rng);
    if (what == 15 && !state.clusterPolicies().empty()) return changeClusterPolicy();
    if (what == 16 && !state.nodes().empty()) return changeNode();
    if (what == 14 && !state.policies().empty()) {  // a policy into or out of audit mode
      NetworkPolicy p = pick(state.policies(), rng);
      p.audit = !p.audit;
      state.upsert(p);
      tellPolicy(p);
      return std::string(p.audit ? "audit " : "enforce ") + p.key();
    }
    if (what == 12 && !state.endpointSlices().empty())
      return resliceService(pick(state.endpointSlices(), rng));
    if (what == 13 && !state.services().empty()) return reshapeService(pick(state.services(), rng));
    if (what > 11 || state.pods().empty() || state.policies().empty() || state.namespaces().empty())
      what = 11;
    Pod pod = pick(state.pods(), rng);
    switch (what) {
      case 0:
      case 1: {  // relabel a pod like another one
        pod.labels = pick(state.pods(), rng).labels;
        state.upsert(pod);
        tellPod(pod);
        return "relabel pod " + pod.key();
      }
      case 2: {  // move a pod on or off the node
        pod.nodeName = pod.nodeName == kNode ? "node-2" : kNode;
        state.upsert(pod);
        tellPod(pod);
        return "move pod " + pod.key();
      }
      case 3: {  // a new address (sometimes another pod's, which pods may briefly share)
        const Pod& other = pick(state.pods(), rng);
        pod.ips = {std::uniform_int_distribution<int>(0, 3)(rng) == 0 && !other.ips.empty()
                       ? other.ips.front()
                       : *IpAddress::parse("10.250." + std::to_string(nextAddress / 250) + "." +
                                           std::to_string(nextAddress % 250 + 1))};
        ++nextAddress;
        state.upsert(pod);
        tellPod(pod);
        return "readdress pod " + pod.key();
      }
      case 4: {  // ports like another pod's, or finished
        if (std::uniform_int_distribution<int>(0, 1)(rng)) {
          pod.ports = pick(state.pods(), rng).ports;
        } else {
          pod.phase = pod.phase == PodPhase::kRunning ? PodPhase::kSucceeded : PodPhase::kRunning;
        }
        state.upsert(pod);
        tellPod(pod);
        return "ports/phase of pod " + pod.key();
      }
      case 5: {
        state.remove("Pod", pod.key());
        removedPods.push_back(pod);
        tellPod(pod);
        return "remove pod " + pod.key();
      }
      case 6: {
        NetworkPolicy p = pick(state.policies(), rng);
        state.remove("NetworkPolicy", p.key());
        removedPolicies.push_back(p);
        tellPolicy(p);
        return "remove policy " + p.key();
      }
      case 7: {  // rewrite a policy with another's spec
        NetworkPolicy p = pick(state.policies(), rng);
        const NetworkPolicy& other = pick(state.policies(), rng);
        NetworkPolicy rewritten = other;
        rewritten.ns = p.ns;
        rewritten.name = p.name;
        state.upsert(rewritten);
        tellPolicy(rewritten);
        return "rewrite policy " + p.key() + " like " + other.key();
      }
      case 8: {  // relabel a namespace like another one
        Namespace ns = pick(state.namespaces(), rng);
        std::vector<std::pair<std::string, std::string>> items;
        for (const auto& kv : pick(state.namespaces(), rng).labels.items())
          if (kv.first != "kubernetes.io/metadata.name") items.push_back(kv);
        ns.labels = Labels(std::move(items));
        state.upsert(ns);
        tellNamespace(ns.name);
        return "relabel namespace " + ns.name;
      }
      case 9: {
        Namespace ns = pick(state.namespaces(), rng);
        state.remove("Namespace", ns.name);
        removedNamespaces.push_back(ns);
        tellNamespace(ns.name);
        return "remove namespace " + ns.name;
      }
      case 10: {  // a pod moves into another namespace: a different object
        Pod moved = pod;
        moved.ns = pick(state.namespaces(), rng).name;
        moved.name = pod.name + "-x" + std::to_string(nextAddress++);
        state.upsert(moved);
        tellPod(moved);
        return "new pod " + moved.key();
      }
      default: {  // bring something back
        int kind = std::uniform_int_distribution<int>(0, 2)(rng);
        if (kind == 0 && !removedPods.empty()) {
          Pod p = removedPods.back();
          removedPods.pop_back();
          state.upsert(p);
          tellPod(p);
          return "restore pod " + p.key();
        }
        if (kind == 1 && !removedPolicies.empty()) {
          NetworkPolicy p = removedPolicies.back();
          removedPolicies.pop_back();
          state.upsert(p);
          tellPolicy(p);
          return "restore policy " + p.key();
        }
        if (!removedNamespaces.empty()) {
          Namespace n = removedNamespaces.back();
          removedNamespaces.pop_back();
          state.upsert(n);
          tellNamespace(n.name);
          return "restore namespace " + n.name;
        }
        return "nothing";
      }
    }
  }
};

}  // namespace

// Under AddressSanitizer (ten times slower here, and there for memory errors, not for more sequences) the
// sequences are shorter: the full length took 3 of CI's 20 minutes on its own.
#ifdef NFTPOL_SANITIZED
constexpr int kSteps = 30;
#else
constexpr int kSteps = 400;
#endif

TEST_CASE("the incremental table equals the full render after every change of random sequences",
          "[render][incremental]") {
  size_t named = 0;    // steps whose changes were named, not the whole table
  size_t audited = 0;  // steps whose table had an audit chain
  size_t tiered = 0;   // and an Admin tier chain
  // 40 seeds passed when it was written; seed 12 once found a cluster policy's chain named for rules it no
  // longer had (a policy that came to name ports, in a class whose pods' ports were already in its key).
  for (uint64_t seed = 1; seed <= 12; ++seed) {
#ifdef NFTPOL_SANITIZED
    // Half the seeds under the sanitizers, one of each kind: IPv4 with the flow log and dual-stack without,
    // each with and without cluster policies, and three namespaces; and seed 12.
    if (seed != 1 && seed != 2 && seed != 6 && seed != 7 && seed != 9 && seed != 12) continue;
#endif
    bool dualStack = seed % 2 == 0;
    // The last seeds put some fifty pods in each namespace, past where the model indexes a namespace's
    // labels, so the index is built and kept through the changes.
    uint32_t namespaces = seed > 8 ? 3 : 12;
    Scenario s;
    s.rng.seed(seed);
    auto flowLog = seed % 2 ? std::optional(kFlowLog) : std::nullopt;
    s.incremental.nodeTable = render::NodeTable(kNode, flowLog);
    // Half the seeds with cluster policies of both tiers, and the Nodes their nodes peers read.
    s.state = bench::generateCluster({.namespaces = namespaces,
                                      .pods = 160,
                                      .policies = 60,
                                      .seed = seed,
                                      .dualStack = dualStack,
                                      .clusterPolicies = seed > 5 ? 20u : 0u});
    // A third of the pods on our node, the rest on two others.
    for (Pod p : s.state.pods()) {
      p.nodeName = std::uniform_int_distribution<int>(0, 2)(s.rng) == 0 ? kNode : "node-2";
      s.state.upsert(p);
    }
    // Objects arrive in any order, as list and watch events do.
    std::vector<std::function<void()>> initial;
    for (const auto& n : s.state.namespaces())
      initial.push_back([&s, name = n.name] { s.tellNamespace(name); });
    for (const auto& p : s.state.pods())
      initial.push_back([&s, p] { s.tellPod(p); });
    for (const auto& p : s.state.policies())
      initial.push_back([&s, p] { s.tellPolicy(p); });
    for (const auto& p : s.state.clusterPolicies())
      initial.push_back([&s, p] { s.tellClusterPolicy(p); });
    for (const auto& n : s.state.nodes())
      initial.push_back([&s, name = n.name] { s.tellNode(name); });
    std::shuffle(initial.begin(), initial.end(), s.rng);
    for (auto& f : initial)
      f();
    s.addServices();
    INFO("seed " << seed << (dualStack ? " dual-stack" : ""));
    REQUIRE(firstDifference(s.incremental.table(), fullRender(s.state, flowLog)).empty());
    REQUIRE(s.incremental.table().chains.size() > 3);
    REQUIRE(s.incremental.table().findChain("services"));
    Table previous = s.incremental.table();
    (void)s.incremental.nodeTable.takeChanges();
    for (int i = 0; i < kSteps; ++i) {
      std::string change = s.step();
      INFO("step " << i << ": " << change);
      Table expected = fullRender(s.state, flowLog);
      const Table& got = s.incremental.table();
      // What the table says changed covers everything that did (what a backend is told to compare).
      if (auto changes = s.incremental.nodeTable.takeChanges()) {
        for (const auto& name : changedNames(previous, got)) {
          INFO("changed but not named: " << name);
          REQUIRE(changes->count(name));
        }
        ++named;
      }
      previous = got;
      INFO(firstDifference(got, expected));
      REQUIRE(firstDifference(got, expected).empty());
      REQUIRE(got == expected);
      audited += std::any_of(got.chains.begin(), got.chains.end(),
                             [](const Chain& c) { return c.name.starts_with("audit-"); });
      tiered += std::any_of(got.chains.begin(), got.chains.end(),
                            [](const Chain& c) { return c.name.starts_with("admin-"); });
    }
  }
  CHECK(audited > 0);
  CHECK(tiered > 0);
  CHECK(named > 0);
}

TEST_CASE("services: the incremental table equals the full render through endpoint and service changes",
          "[incremental]") {
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadPaths({NFTPOL_SOURCE_DIR "/tests/nft/data/services.yaml"}, state, diagnostics);
  REQUIRE_FALSE(hasErrors(diagnostics));
  Incremental incremental;
  for (const auto& n : state.namespaces())
    incremental.setNamespace(n.name, &n);
  for (const auto& p : state.pods())
    incremental.setPod(p.key(), &p);
  for (const auto& s : state.services())
    incremental.setService(s.key(), &s);
  for (const auto& s : state.endpointSlices())
    incremental.setEndpointSlice(s.key(), &s);
  auto same = [&](const char* step) {
    INFO(step);
    const Table& t = incremental.table();
    Table full = fullRender(state);
    INFO(firstDifference(t, full));
    CHECK(t == full);
  };
  same("everything loaded");
  REQUIRE(incremental.table().findChain("services"));

  // An endpoint goes: one backend fewer, a new map of one, the chain's balancing rewritten.
  EndpointSlice slice = *state.findEndpointSlice("svc", "web-v4");
  slice.endpoints.pop_back();
  state.upsert(slice);
  incremental.setEndpointSlice(slice.key(), &slice);
  same("an endpoint removed");
  CHECK_FALSE(incremental.table().findMap("service-ips-v4")->verdicts.empty());

  // Every endpoint not ready: the service's addresses move to the reject set.
  for (auto& e : slice.endpoints)
    e.ready = false;
  state.upsert(slice);
  incremental.setEndpointSlice(slice.key(), &slice);
  same("no ready endpoint");
  const Set* rejected = incremental.table().findSet("no-endpoints-v4");
  REQUIRE(rejected);
  nft::Key key = nft::AddressProtocolPort{*IpAddress::parse("10.96.0.10"), Protocol::kTCP, 80};
  CHECK(std::find(rejected->elements.begin(), rejected->elements.end(), key) != rejected->elements.end());

  // The pod behind a named target port changes its port: only a slice without that port entry reads it.
  Pod pod = *state.findPod("svc", "web-1");
  pod.ports[0].port = 9090;
  state.upsert(pod);
  incremental.setPod(pod.key(), &pod);
  same("a backend pod's container port changed");

  state.remove("Service", "svc/web");
  incremental.setService("svc/web", nullptr);
  same("a service removed");
  state.remove("EndpointSlice", "svc/web-v4");
  incremental.setEndpointSlice("svc/web-v4", nullptr);
  same("its slice removed");
}
