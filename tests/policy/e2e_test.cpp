// The Kubernetes NetworkPolicy e2e cases (test/e2e/network/netpol), as data files in tests/policy/e2e/.
// The model is upstream's: namespaces x, y, z labelled ns=<name>; pods a, b, c in each labelled pod=<name>,
// serving ports 80 and 81 on TCP, UDP and SCTP under the names serve-80-tcp, serve-81-udp, ...
//
// A case is a list of steps. Each step applies manifests, deletes objects or adds labels, then states the
// expected truth table for a port and protocol: a default (allow or deny) and then cells to set, each written
// "allow|deny FROM -> TO" with patterns "x/a", "x/*", "*/a" or "*". Later lines override earlier ones; a pod
// can always reach itself, as upstream's AllowLoopback. The same files drive the conformance harness on real
// packets.
#include <yaml-cpp/yaml.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nftpol/policy/loader.h"
#include "nftpol/policy/matrix.h"
#include "nftpol/policy/reach.h"

using namespace nftpol;
using namespace nftpol::policy;

namespace {

const char* kNamespaces[] = {"x", "y", "z"};
const char* kPods[] = {"a", "b", "c"};

std::string modelManifests() {
  std::ostringstream out;
  for (int n = 0; n < 3; ++n) {
    out << "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: " << kNamespaces[n]
        << "\n  labels:\n    ns: " << kNamespaces[n] << "\n";
    for (int p = 0; p < 3; ++p) {
      out << "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: " << kPods[p]
          << "\n  namespace: " << kNamespaces[n] << "\n  labels:\n    pod: " << kPods[p]
          << "\nspec:\n  nodeName: node-" << (p % 2) << "\n  containers:\n";
      for (int port : {80, 81}) {
        out << "  - name: cont-" << port << "\n    ports:\n";
        for (const char* proto : {"TCP", "UDP", "SCTP"}) {
          std::string lower = proto;
          for (auto& ch : lower)
            ch = static_cast<char>(std::tolower(ch));
          out << "    - name: serve-" << port << "-" << lower << "\n      containerPort: " << port
              << "\n      protocol: " << proto << "\n";
        }
      }
      out << "status:\n  phase: Running\n  podIP: 10.244." << n + 1 << "." << 10 + p << "\n";
    }
  }
  return out.str();
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
      out += std::string(cells[i][j] ? "." : "X") + "\t";
    out += "\n";
  }
  return out;
}

void runCase(const std::filesystem::path& file) {
  YAML::Node doc = YAML::LoadFile(file.string());
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadText(modelManifests(), "model", state, diagnostics);
  for (const auto& d : diagnostics)
    FAIL_CHECK(d.toString());
  REQUIRE(diagnostics.empty());
  int stepNo = 0;
  for (const auto& step : doc["steps"]) {
    ++stepNo;
    if (step["apply"]) loadText(step["apply"].as<std::string>(), file.string(), state, diagnostics);
    for (const auto& del : step["delete"]) {
      auto text = del.as<std::string>();  // "NetworkPolicy x/name"
      auto space = text.find(' ');
      REQUIRE(state.remove(text.substr(0, space), text.substr(space + 1)));
    }
    for (const auto& rel : step["addLabels"]) {  // {namespace: y, labels: {...}} or {pod: x/a, labels: {...}}
      if (rel["namespace"]) {
        Namespace ns = *state.findNamespace(rel["namespace"].as<std::string>());
        for (const auto& kv : rel["labels"])
          ns.labels.set(kv.first.as<std::string>(), kv.second.as<std::string>());
        state.upsert(ns);
      } else {
        auto key = rel["pod"].as<std::string>();
        auto slash = key.find('/');
        Pod pod = *state.findPod(key.substr(0, slash), key.substr(slash + 1));
        for (const auto& kv : rel["labels"])
          pod.labels.set(kv.first.as<std::string>(), kv.second.as<std::string>());
        state.upsert(pod);
      }
    }
    for (const auto& d : diagnostics)
      FAIL_CHECK(d.toString());
    REQUIRE(diagnostics.empty());
    Compiled compiled = Compiled::build(state);
    std::vector<std::string> pods;
    for (const Pod* p : compiled.pods())
      pods.push_back(p->key());
    REQUIRE(pods.size() == 9);
    for (const auto& probe : step["expect"]) {
      auto protocol = *parseProtocol(probe["protocol"].as<std::string>());
      auto port = probe["port"].as<uint16_t>();
      bool base = probe["default"].as<std::string>() == "allow";
      std::vector<std::vector<bool>> expected(9, std::vector<bool>(9, base));
      for (const auto& cell : probe["cells"]) {
        auto text = cell.as<std::string>();
        auto space = text.find(' ');
        auto arrow = text.find(" -> ");
        REQUIRE(space != std::string::npos);
        REQUIRE(arrow != std::string::npos);
        std::string verb = text.substr(0, space);
        REQUIRE((verb == "allow" || verb == "deny"));
        std::string from = text.substr(space + 1, arrow - space - 1), to = text.substr(arrow + 4);
        for (size_t i = 0; i < 9; ++i)
          for (size_t j = 0; j < 9; ++j)
            if (patternMatches(from, pods[i]) && patternMatches(to, pods[j]))
              expected[i][j] = verb == "allow";
      }
      for (size_t i = 0; i < 9; ++i)
        expected[i][i] = true;
      BitMatrix m = reachability(compiled, protocol, port);
      std::vector<std::vector<bool>> actual(9, std::vector<bool>(9)), viaCanReach = actual;
      for (PodId i = 0; i < 9; ++i)
        for (PodId j = 0; j < 9; ++j) {
          actual[i][j] = m.get(i, j);
          viaCanReach[i][j] =
              anyAllowed(canReach(compiled, {Endpoint::ofPod(i), Endpoint::ofPod(j), protocol, port}));
        }
      INFO(file.filename().string() << " step " << stepNo << " " << toString(protocol) << "/" << port
                                    << "\nexpected:\n"
                                    << table(pods, expected) << "matrix:\n"
                                    << table(pods, actual) << "can-reach:\n"
                                    << table(pods, viaCanReach));
      CHECK(actual == expected);
      CHECK(viaCanReach == expected);
    }
  }
}

}  // namespace

TEST_CASE("upstream NetworkPolicy e2e cases", "[e2e]") {
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(NFTPOL_SOURCE_DIR "/tests/policy/e2e"))
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 30);
  for (const auto& f : files) {
    DYNAMIC_SECTION(f.filename().string()) {
      runCase(f);
    }
  }
}
