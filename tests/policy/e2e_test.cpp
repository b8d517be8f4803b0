// The Kubernetes NetworkPolicy e2e cases (test/e2e/network/netpol) and network-policy-api's
// ClusterNetworkPolicy conformance tests, judged on the simulator. The cases are the conformance harness's
// (tests/conformance/cases/ and cluster-cases/, their format is described in harness.sh): one file per
// upstream test, with upstream's expectations as `# expect` or `# poke` lines. The harness runs them on real
// packets and needs root; this runs them on the matrix and on can-reach, anywhere.
//
// The models are the harness's. np: namespaces x, y, z labelled ns=<name>; pods a, b, c in each labelled
// pod=<name>, serving ports 80 and 81 on TCP and UDP under the names serve-80-tcp, serve-81-udp, ... houses:
// network-policy-conformance-<house> labelled conformance-house=<house>, two StatefulSet pods in each
// (container ports web, TCP 80, and dns, UDP 53). Pods alternate between node-2 and node-1 in order, as the
// harness places them.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "nftpol/policy/loader.h"
#include "nftpol/policy/matrix.h"
#include "nftpol/policy/reach.h"

using namespace nftpol;
using namespace nftpol::policy;

namespace {

struct ModelPod {
  std::string key;  // x/a
  int node;
  std::string ip;
};

struct CaseModel {
  std::vector<ModelPod> pods;
  std::string manifests;
};

ModelPod place(const std::string& key, size_t k) {
  int node = k % 2 == 0 ? 2 : 1;
  return {key, node, "10.244." + std::to_string(node) + "." + std::to_string(10 + k)};
}

std::string podManifest(const ModelPod& p, const std::string& labels, const std::string& ports) {
  auto slash = p.key.find('/');
  return "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " + p.key.substr(slash + 1) +
         ", namespace: " + p.key.substr(0, slash) + ", labels: {" + labels + "}}\nspec:\n  nodeName: node-" +
         std::to_string(p.node) + "\n  containers:\n  - name: c\n    ports: [" + ports +
         "]\nstatus: {phase: Running, podIP: " + p.ip + "}\n";
}

CaseModel npModel() {
  CaseModel m;
  for (const char* ns : {"x", "y", "z"}) {
    m.manifests += std::string("---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ") + ns +
                   ", labels: {ns: " + ns + "}}\n";
    for (const char* name : {"a", "b", "c"}) {
      m.pods.push_back(place(std::string(ns) + "/" + name, m.pods.size()));
      std::string ports;
      for (int port : {80, 81})
        for (const char* proto : {"TCP", "UDP"})
          ports += std::string(ports.empty() ? "" : ", ") + "{name: serve-" + std::to_string(port) + "-" +
                   (std::string(proto) == "TCP" ? "tcp" : "udp") +
                   ", containerPort: " + std::to_string(port) + ", protocol: " + proto + "}";
      m.manifests += podManifest(m.pods.back(), std::string("pod: ") + name, ports);
    }
  }
  return m;
}

CaseModel housesModel() {
  CaseModel m;
  for (auto [house, set] :
       {std::pair{"gryffindor", "harry-potter"}, std::pair{"slytherin", "draco-malfoy"},
        std::pair{"hufflepuff", "cedric-diggory"}, std::pair{"ravenclaw", "luna-lovegood"}}) {
    std::string ns = std::string("network-policy-conformance-") + house;
    m.manifests += "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: " + ns +
                   ", labels: {conformance-house: " + house + "}}\n";
    for (int i : {0, 1}) {
      std::string name = std::string(set) + "-" + std::to_string(i);
      m.pods.push_back(place(ns + "/" + name, m.pods.size()));
      m.manifests += podManifest(
          m.pods.back(),
          std::string("conformance-house: ") + house + ", statefulset.kubernetes.io/pod-name: " + name +
              ", apps.kubernetes.io/pod-index: '" + std::to_string(i) + "'",
          "{name: web, containerPort: 80}, {name: dns, containerPort: 53, protocol: UDP}");
    }
  }
  return m;
}

// `# expect[ SPEC]: FROM TO ./X`
struct ExpectLine {
  std::string spec;  // empty: every probe of the step
  std::string from, to;
  bool allowed;
};

struct Step {
  std::string what;
  std::vector<std::string> probes;  // TCP/80, UDP/81@svc, ...
  std::vector<ExpectLine> expectations;
  std::vector<ExpectLine> pokes;  // `# poke: FROM TO SPEC ./X`: the step judges these pairs only
  std::string body;
};

std::string after(const std::string& line, const std::string& prefix) {
  return line.substr(prefix.size());
}

std::vector<std::string> words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> out;
  for (std::string w; in >> w;)
    out.push_back(w);
  return out;
}

std::vector<Step> readSteps(const std::filesystem::path& file) {
  std::ifstream in(file);
  std::vector<Step> steps(1);
  std::vector<std::string> defaultProbes;
  bool stepped = false;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("# step: ")) {
      if (stepped) steps.emplace_back();
      stepped = true;
      steps.back() = Step{.what = after(line, "# step: "), .probes = defaultProbes};
    } else if (line.starts_with("# probe: ")) {
      steps.back().probes = words(after(line, "# probe: "));
      if (!stepped) defaultProbes = steps.back().probes;
    } else if (line.starts_with("# poke: ")) {
      auto w = words(after(line, "# poke: "));
      REQUIRE(w.size() == 4);
      REQUIRE((w[3] == "." || w[3] == "X"));
      steps.back().pokes.push_back({w[2], w[0], w[1], w[3] == "."});
    } else if (line.starts_with("# expect")) {
      auto colon = line.find(": ");
      REQUIRE(colon != std::string::npos);
      auto spec = line.substr(8, colon - 8);
      auto w = words(line.substr(colon + 2));
      REQUIRE(w.size() == 3);
      REQUIRE((w[2] == "." || w[2] == "X"));
      steps.back().expectations.push_back(
          {words(spec).empty() ? "" : words(spec)[0], w[0], w[1], w[2] == "."});
    }
    steps.back().body += line + "\n";
  }
  return steps;
}

// @ip(x/a) and @node(x/a), as the harness replaces them.
std::string instantiate(std::string text, const std::vector<ModelPod>& pods) {
  for (const auto& p : pods)
    for (const auto& [from, to] : {std::pair{"@ip(" + p.key + ")", p.ip},
                                   std::pair{"@node(" + p.key + ")", "node-" + std::to_string(p.node)}})
      for (size_t at; (at = text.find(from)) != std::string::npos;)
        text.replace(at, from.size(), to);
  return text;
}

bool patternMatches(const std::string& pattern, const std::string& pod) {
  if (pattern == "*") return true;
  auto slash = pattern.find('/');
  auto pslash = pod.find('/');
  std::string ns = pattern.substr(0, slash), name = pattern.substr(slash + 1);
  return (ns == "*" || ns == pod.substr(0, pslash)) && (name == "*" || name == pod.substr(pslash + 1));
}

std::string table(const std::vector<std::string>& pods, const std::vector<std::vector<bool>>& cells) {
  std::string out = "-\t";
  for (const auto& p : pods)
    out += p + "\t";
  out += "\n";
  for (size_t i = 0; i < pods.size(); ++i) {
    out += pods[i] + "\t";
    for (size_t j = 0; j < pods.size(); ++j)
      out += std::string(i == j ? "-" : cells[i][j] ? "." : "X") + "\t";
    out += "\n";
  }
  return out;
}

// Returns how many probes were judged against upstream's expectations.
int runCase(const std::filesystem::path& file, const CaseModel& model) {
  int judged = 0, stepNo = 0;
  const size_t n = model.pods.size();
  for (const Step& step : readSteps(file)) {
    ++stepNo;
    ClusterState state;
    std::vector<Diagnostic> diagnostics;
    loadText(model.manifests, "model", state, diagnostics);
    loadText(instantiate(step.body, model.pods), file.string(), state, diagnostics);
    for (const auto& d : diagnostics)
      FAIL_CHECK(d.toString());
    REQUIRE(diagnostics.empty());
    Compiled compiled = Compiled::build(state);
    std::vector<std::string> pods;
    for (const Pod* p : compiled.pods())
      pods.push_back(p->key());
    REQUIRE(pods.size() == n);
    std::set<std::string> specs;
    for (const auto& probe : step.probes)
      specs.insert(probe.substr(0, probe.find('@')));  // through a service: the same expectation
    for (const auto& spec : specs) {
      // Pokes judge the pairs they name; expect lines apply in order over "all allowed".
      bool poked = !step.pokes.empty();
      std::vector<const ExpectLine*> lines;
      for (const auto& e : poked ? step.pokes : step.expectations)
        if (e.spec.empty() || e.spec == spec) lines.push_back(&e);
      if (lines.empty()) continue;
      auto slash = spec.find('/');
      auto protocol = parseProtocol(spec.substr(0, slash));
      REQUIRE(protocol);
      auto port = static_cast<uint16_t>(std::stoi(spec.substr(slash + 1)));
      std::vector<std::vector<bool>> expected(n, std::vector<bool>(n, true)),
          judgedPair(n, std::vector<bool>(n, !poked));
      for (const ExpectLine* e : lines)
        for (size_t i = 0; i < n; ++i)
          for (size_t j = 0; j < n; ++j)
            if (patternMatches(e->from, pods[i]) && patternMatches(e->to, pods[j])) {
              expected[i][j] = e->allowed;
              judgedPair[i][j] = true;
            }
      BitMatrix m = reachability(compiled, *protocol, port);
      std::vector<std::vector<bool>> actual(n, std::vector<bool>(n)), viaCanReach = actual;
      for (PodId i = 0; i < n; ++i)
        for (PodId j = 0; j < n; ++j) {
          actual[i][j] = m.get(i, j);
          viaCanReach[i][j] =
              anyAllowed(canReach(compiled, {Endpoint::ofPod(i), Endpoint::ofPod(j), *protocol, port}));
        }
      INFO(file.filename().string() << " step " << stepNo << " (" << step.what << ") " << spec
                                    << "\nexpected (upstream):\n"
                                    << table(pods, expected) << "matrix:\n"
                                    << table(pods, actual) << "can-reach:\n"
                                    << table(pods, viaCanReach));
      CHECK(actual == viaCanReach);  // the two ways of asking agree on every pair, judged or not
      for (size_t i = 0; i < n; ++i) {
        CHECK(actual[i][i]);  // a pod reaches itself whatever the policy: the traffic never leaves it
        for (size_t j = 0; j < n; ++j)
          if (i == j ||
              !judgedPair[i][j])  // not judged: a pod and itself (upstream's ignoreLoopback), unpoked
            expected[i][j] = actual[i][j] = viaCanReach[i][j] = true;
      }
      CHECK(actual == expected);
      CHECK(viaCanReach == expected);
      ++judged;
    }
  }
  return judged;
}

std::vector<std::filesystem::path> caseFiles(const std::string& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(NFTPOL_SOURCE_DIR "/tests/conformance/" + dir))
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST_CASE("upstream NetworkPolicy e2e cases, on the simulator", "[e2e]") {
  auto files = caseFiles("cases");
  REQUIRE(files.size() >= 48);
  const CaseModel model = npModel();
  for (const auto& f : files) {
    DYNAMIC_SECTION(f.filename().string()) {
      CHECK(runCase(f, model) > 0);  // every case states expectations
    }
  }
}

TEST_CASE("network-policy-api ClusterNetworkPolicy conformance cases, on the simulator", "[e2e][cluster]") {
  auto files = caseFiles("cluster-cases");
  REQUIRE(files.size() >= 26);
  const CaseModel model = housesModel();
  for (const auto& f : files) {
    DYNAMIC_SECTION(f.filename().string()) {
      std::ifstream in(f);
      std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      CHECK(text.find("\n# model: houses\n") != std::string::npos);
      CHECK(runCase(f, model) > 0);  // every case pokes
    }
  }
}
