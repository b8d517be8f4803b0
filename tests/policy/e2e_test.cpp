// The Kubernetes NetworkPolicy e2e cases (test/e2e/network/netpol), judged on the simulator. The cases are
// the conformance harness's (tests/conformance/cases/, their format is described in harness.sh): one file per
// upstream test, with upstream's expectations as `# expect` lines. The harness runs them on real packets and
// needs root; this runs them on the matrix and on can-reach, anywhere.
//
// The model is the harness's: namespaces x, y, z labelled ns=<name>; pods a, b, c in each labelled
// pod=<name>, serving ports 80 and 81 on TCP and UDP under the names serve-80-tcp, serve-81-udp, ...; x/a,
// x/c, y/b, z/a and z/c on node-2 (10.244.2.0/24), the others on node-1, as the harness places them.
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

std::vector<ModelPod> modelPods() {
  std::vector<ModelPod> pods;
  for (const char* ns : {"x", "y", "z"})
    for (const char* name : {"a", "b", "c"}) {
      int k = static_cast<int>(pods.size());
      int node = k % 2 == 0 ? 2 : 1;
      pods.push_back({std::string(ns) + "/" + name, node,
                      "10.244." + std::to_string(node) + "." + std::to_string(10 + k)});
    }
  return pods;
}

std::string modelManifests(const std::vector<ModelPod>& pods) {
  std::ostringstream out;
  for (const char* ns : {"x", "y", "z"})
    out << "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: " << ns << ", labels: {ns: " << ns
        << "}}\n";
  for (const auto& p : pods) {
    auto slash = p.key.find('/');
    out << "---\napiVersion: v1\nkind: Pod\nmetadata: {name: " << p.key.substr(slash + 1)
        << ", namespace: " << p.key.substr(0, slash) << ", labels: {pod: " << p.key.substr(slash + 1)
        << "}}\nspec:\n  nodeName: node-" << p.node << "\n  containers:\n  - name: c\n    ports:\n";
    for (int port : {80, 81})
      for (const char* proto : {"tcp", "udp"})
        out << "    - {name: serve-" << port << "-" << proto << ", containerPort: " << port
            << ", protocol: " << (std::string(proto) == "tcp" ? "TCP" : "UDP") << "}\n";
    out << "status: {phase: Running, podIP: " << p.ip << "}\n";
  }
  return out.str();
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
int runCase(const std::filesystem::path& file) {
  const auto model = modelPods();
  int judged = 0, stepNo = 0;
  for (const Step& step : readSteps(file)) {
    ++stepNo;
    ClusterState state;
    std::vector<Diagnostic> diagnostics;
    loadText(modelManifests(model), "model", state, diagnostics);
    loadText(instantiate(step.body, model), file.string(), state, diagnostics);
    for (const auto& d : diagnostics)
      FAIL_CHECK(d.toString());
    REQUIRE(diagnostics.empty());
    Compiled compiled = Compiled::build(state);
    std::vector<std::string> pods;
    for (const Pod* p : compiled.pods())
      pods.push_back(p->key());
    REQUIRE(pods.size() == 9);
    std::set<std::string> specs;
    for (const auto& probe : step.probes)
      specs.insert(probe.substr(0, probe.find('@')));  // through a service: the same expectation
    for (const auto& spec : specs) {
      std::vector<const ExpectLine*> lines;
      for (const auto& e : step.expectations)
        if (e.spec.empty() || e.spec == spec) lines.push_back(&e);
      if (lines.empty()) continue;
      auto slash = spec.find('/');
      auto protocol = parseProtocol(spec.substr(0, slash));
      REQUIRE(protocol);
      auto port = static_cast<uint16_t>(std::stoi(spec.substr(slash + 1)));
      std::vector<std::vector<bool>> expected(9, std::vector<bool>(9, true));
      for (const ExpectLine* e : lines)
        for (size_t i = 0; i < 9; ++i)
          for (size_t j = 0; j < 9; ++j)
            if (patternMatches(e->from, pods[i]) && patternMatches(e->to, pods[j]))
              expected[i][j] = e->allowed;
      BitMatrix m = reachability(compiled, *protocol, port);
      std::vector<std::vector<bool>> actual(9, std::vector<bool>(9)), viaCanReach = actual;
      for (PodId i = 0; i < 9; ++i)
        for (PodId j = 0; j < 9; ++j) {
          actual[i][j] = m.get(i, j);
          viaCanReach[i][j] =
              anyAllowed(canReach(compiled, {Endpoint::ofPod(i), Endpoint::ofPod(j), *protocol, port}));
        }
      INFO(file.filename().string() << " step " << stepNo << " (" << step.what << ") " << spec
                                    << "\nexpected (upstream):\n"
                                    << table(pods, expected) << "matrix:\n"
                                    << table(pods, actual) << "can-reach:\n"
                                    << table(pods, viaCanReach));
      for (size_t i = 0; i < 9; ++i) {
        CHECK(actual[i][i]);  // a pod reaches itself whatever the policy: the traffic never leaves it
        expected[i][i] = actual[i][i] = viaCanReach[i][i] = true;  // not judged, as upstream's ignoreLoopback
      }
      CHECK(actual == expected);
      CHECK(viaCanReach == expected);
      ++judged;
    }
  }
  return judged;
}

}  // namespace

TEST_CASE("upstream NetworkPolicy e2e cases, on the simulator", "[e2e]") {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(NFTPOL_SOURCE_DIR "/tests/conformance/cases"))
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 48);
  for (const auto& f : files) {
    DYNAMIC_SECTION(f.filename().string()) {
      CHECK(runCase(f) > 0);  // every case states expectations
    }
  }
}
