#include "generator.h"

#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <vector>

#include "nftpol/policy/loader.h"

namespace nftpol::bench {
namespace {

// splitmix64: tiny and fully specified, unlike the standard distributions, so a seed gives the same cluster
// with any standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(next() % n); }

 private:
  uint64_t state_;
};

struct App {
  const char* tier;
  std::vector<std::pair<const char*, int>> ports;
};
const App kApps[] = {
    {"web", {{"http", 8080}, {"metrics", 9090}}},
    {"api", {{"http", 8080}, {"grpc", 9000}, {"metrics", 9090}}},
    {"db", {{"postgres", 5432}}},
    {"cache", {{"redis", 6379}}},
    {"worker", {{"metrics", 9090}}},
};
constexpr uint32_t kAppsPerNamespace = 5;
const char* kEnvs[] = {"prod", "staging", "dev"};

std::string ns(uint32_t i) {
  return "ns-" + std::to_string(i);
}
std::string team(uint32_t i) {
  return "team-" + std::to_string(i % 20);
}
std::string appName(uint32_t app) {
  return "app-" + std::to_string(app);
}

void header(std::ostream& out, const std::string& kind, const std::string& apiVersion,
            const std::string& name, const std::string& namespaceName) {
  out << "---\napiVersion: " << apiVersion << "\nkind: " << kind << "\nmetadata:\n  name: " << name << "\n";
  if (!namespaceName.empty()) out << "  namespace: " << namespaceName << "\n";
}

void writePolicy(std::ostream& out, Rng& rng, uint32_t index, uint32_t nsIndex, uint32_t namespaces) {
  header(out, "NetworkPolicy", "networking.k8s.io/v1", "policy-" + std::to_string(index), ns(nsIndex));
  uint32_t app = rng.below(kAppsPerNamespace), peerApp = rng.below(kAppsPerNamespace);
  const App& peer = kApps[peerApp];
  std::string target = "  podSelector:\n    matchLabels:\n      app: " + appName(app) + "\n";
  // The first policy of every namespace is its default deny, as most real clusters have.
  uint32_t kind = index < namespaces ? 0 : 1 + rng.below(8);
  out << "spec:\n";
  switch (kind) {
    case 0:
      out << "  podSelector: {}\n  policyTypes: [Ingress]\n";
      break;
    case 1:  // namespace isolation
      out << "  podSelector: {}\n  ingress:\n  - from:\n    - podSelector: {}\n";
      break;
    case 2:  // app to app on a named port
      out << target << "  ingress:\n  - from:\n    - podSelector:\n        matchLabels:\n          app: "
          << appName(peerApp) << "\n    ports:\n    - port: " << peer.ports[0].first << "\n";
      break;
    case 3:  // from a team's namespaces, selected apps, numeric port
      out << target
          << "  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels:\n          team: "
          << team(rng.below(namespaces))
          << "\n      podSelector:\n        matchExpressions:\n        - key: tier\n"
          << "          operator: In\n          values: [web, api]\n    ports:\n    - protocol: TCP\n      "
             "port: "
          << kApps[app].ports[0].second << "\n";
      break;
    case 4:  // monitoring scrapes metrics by name
      out << "  podSelector:\n    matchExpressions:\n    - key: tier\n      operator: NotIn\n      values: "
             "[db, cache]\n"
          << "  ingress:\n  - from:\n    - namespaceSelector:\n        matchLabels:\n          "
             "kubernetes.io/metadata.name: ns-0\n    ports:\n    - port: metrics\n";
      break;
    case 5:  // egress: web to api, and DNS
      out << target
          << "  policyTypes: [Egress]\n  egress:\n  - to:\n    - podSelector:\n        matchLabels:\n"
          << "          tier: api\n    ports:\n    - port: http\n  - ports:\n    - protocol: UDP\n      "
             "port: 53\n";
      break;
    case 6:  // egress to the internet but not the cluster's ranges
      out << target
          << "  policyTypes: [Egress]\n  egress:\n  - to:\n    - ipBlock:\n        cidr: 0.0.0.0/0\n"
          << "        except: [10.0.0.0/8, 192.168.0.0/16]\n    ports:\n    - port: 443\n";
      break;
    case 7: {  // ingress from a CIDR with a hole, and a port range
      uint32_t octet = 64 + rng.below(4);
      out << target << "  ingress:\n  - from:\n    - ipBlock:\n        cidr: 10." << octet
          << ".0.0/16\n        except: [10." << octet << "." << rng.below(256) << ".0/24]\n"
          << "    ports:\n    - port: 8000\n      endPort: 8100\n";
      break;
    }
    default:  // from other environments' namespaces, except dev, all ports of one protocol
      out << target << "  ingress:\n  - from:\n    - namespaceSelector:\n        matchExpressions:\n"
          << "        - key: env\n          operator: NotIn\n          values: [dev]\n    ports:\n    - "
             "protocol: TCP\n";
      break;
  }
}

// One ClusterNetworkPolicy: a subject of namespaces (by team) or of pods (an app in one environment), and up
// to two rules per direction of any action with peers of every kind; a few Accept rules name domains (not
// enforced).
void writeClusterPolicy(std::ostream& out, Rng& rng, uint32_t index, uint32_t namespaces) {
  header(out, "ClusterNetworkPolicy", "policy.networking.k8s.io/v1alpha2", "cnp-" + std::to_string(index),
         "");
  bool baseline = index % 5 == 4;
  out << "spec:\n  tier: " << (baseline ? "Baseline" : "Admin") << "\n  priority: " << rng.below(1001)
      << "\n";
  if (rng.below(2) == 0)
    out << "  subject:\n    namespaces:\n      matchLabels: {team: " << team(rng.below(namespaces)) << "}\n";
  else
    out << "  subject:\n    pods:\n      namespaceSelector:\n        matchLabels: {env: "
        << kEnvs[rng.below(3)]
        << "}\n      podSelector:\n        matchLabels: {app: " << appName(rng.below(kAppsPerNamespace))
        << "}\n";
  const char* actions[] = {"Accept", "Deny", "Pass"};
  for (const char* direction : {"ingress", "egress"}) {
    uint32_t rules = rng.below(3);
    if (rules == 0) continue;
    bool egress = direction[0] == 'e';
    out << "  " << direction << ":\n";
    for (uint32_t r = 0; r < rules; ++r) {
      std::string action = actions[rng.below(3)];
      uint32_t kind = rng.below(egress ? 5 : 2);
      if (kind == 4 && action != "Accept") kind = 2;
      out << "  - name: rule-" << r << "\n    action: " << action << "\n    " << (egress ? "to" : "from")
          << ":\n";
      switch (kind) {
        case 0:
          out << "    - namespaces:\n        matchLabels: {team: " << team(rng.below(namespaces)) << "}\n";
          break;
        case 1:
          out << "    - pods:\n        namespaceSelector:\n          matchLabels: {env: "
              << kEnvs[rng.below(3)]
              << "}\n        podSelector:\n          matchExpressions:\n          - {key: tier, operator: "
                 "In, "
                 "values: [web, api]}\n";
          break;
        case 2:
          out << "    - networks: [10." << 64 + rng.below(2) << "." << rng.below(256) << ".0/24, 192.168."
              << rng.below(256) << ".0/24]\n";
          break;
        case 3:
          out << "    - nodes:\n        matchLabels: {role: " << (rng.below(2) ? "worker" : "infra") << "}\n";
          break;
        default:
          out << "    - domainNames: ['*.example.com', api.example.org]\n";
          break;
      }
      uint32_t ports = rng.below(4);
      if (ports == 1) {
        out << "    protocols:\n    - tcp:\n        destinationPort: {number: "
            << kApps[rng.below(5)].ports[0].second << "}\n";
      } else if (ports == 2) {
        out << "    protocols:\n    - udp:\n        destinationPort:\n          range: {start: 5000, end: "
               "5100}\n";
      } else if (ports == 3 && kind <= 1) {
        out << "    protocols:\n    - destinationNamedPort: metrics\n";
      }
    }
  }
}

}  // namespace

std::string generateYaml(const GeneratorOptions& o) {
  Rng rng(o.seed);
  std::ostringstream out;
  uint32_t namespaces = o.namespaces == 0 ? 1 : o.namespaces;
  for (uint32_t i = 0; i < namespaces; ++i) {
    header(out, "Namespace", "v1", ns(i), "");
    out << "  labels:\n    team: " << team(i) << "\n    env: " << kEnvs[i % 3] << "\n";
  }
  for (uint32_t p = 0; p < o.pods; ++p) {
    uint32_t nsIndex = p % namespaces, app = rng.below(kAppsPerNamespace);
    const App& a = kApps[app];
    header(out, "Pod", "v1", appName(app) + "-" + std::to_string(p), ns(nsIndex));
    out << "  labels:\n    app: " << appName(app) << "\n    tier: " << a.tier << "\n    version: v"
        << 1 + rng.below(2) << "\n";
    out << "spec:\n  nodeName: node-" << p % 50 << "\n";
    uint32_t fate = rng.below(100);  // a few pods that NetworkPolicy ignores, as in any real cluster
    if (fate == 0) out << "  hostNetwork: true\n";
    out << "  containers:\n  - name: main\n    ports:\n";
    for (const auto& [name, port] : a.ports)
      out << "    - name: " << name << "\n      containerPort: " << port << "\n";
    out << "status:\n  phase: " << (fate == 1 ? "Pending" : fate == 2 ? "Succeeded" : "Running") << "\n";
    if (fate != 1) {
      uint32_t host = p + 1;
      std::string v4 = "10." + std::to_string(64 + (host >> 16)) + "." + std::to_string((host >> 8) & 0xff) +
                       "." + std::to_string(host & 0xff);
      out << "  podIP: " << v4 << "\n  podIPs:\n  - ip: " << v4 << "\n";
      if (o.dualStack) out << "  - ip: fd00::" << std::hex << host << std::dec << "\n";
    }
  }
  for (uint32_t i = 0; i < o.policies; ++i)
    writePolicy(out, rng, i, i % namespaces, namespaces);
  if (o.clusterPolicies > 0) {
    for (uint32_t n = 0; n < 50; ++n) {
      header(out, "Node", "v1", "node-" + std::to_string(n), "");
      out << "  labels: {role: " << (n % 5 == 0 ? "infra" : "worker")
          << "}\nstatus:\n  addresses:\n  - type: "
          << "InternalIP\n    address: 192.168.0." << n + 1 << "\n";
    }
    for (uint32_t i = 0; i < o.clusterPolicies; ++i)
      writeClusterPolicy(out, rng, i, namespaces);
  }
  return out.str();
}

policy::ClusterState generateCluster(const GeneratorOptions& options) {
  policy::ClusterState state;
  std::vector<policy::Diagnostic> diagnostics;
  policy::loadText(generateYaml(options), "generated", state, diagnostics);
  // The generator must only write valid objects: anything else is its own bug. The one warning it means to
  // cause is that domainNames are not enforced.
  bool bug = false;
  for (const auto& d : diagnostics) {
    if (d.severity == policy::Severity::kWarning && d.message.find("domainNames") != std::string::npos)
      continue;
    std::fprintf(stderr, "generator bug: %s\n", d.toString().c_str());
    bug = true;
  }
  if (bug) std::abort();
  return state;
}

}  // namespace nftpol::bench
