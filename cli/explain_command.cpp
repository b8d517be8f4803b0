// nftpol explain and nftpol lint: reading policies back as resolved pods, namespaces, CIDRs and ports.
#include <ostream>
#include <utility>

#include "args.h"
#include "cluster_input.h"
#include "commands.h"
#include "nftpol/policy/explain.h"
#include "nftpol/policy/loader.h"

namespace nftpol::cli {

using namespace nftpol::policy;

int explainCommand(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::parse(argv, {"cluster"});
  if (!args || args->positionals().size() > 1) {
    if (!args) err << "nftpol explain: " << args.error().message << "\n";
    err << "usage: nftpol explain --cluster PATH... [namespace/policy | cnp/name | anp/name | "
           "banp/default]\n";
    return kExitBadInput;
  }
  auto cluster = loadCluster(args->all("cluster"), {}, err);
  if (!cluster) return kExitBadInput;
  const Compiled& c = *cluster->compiled;
  if (args->positionals().empty()) {
    if (c.policies().empty() && c.clusterPolicies().empty())
      out << "no NetworkPolicy in the cluster: every pod accepts and sends all traffic\n";
    // In evaluation order: the Admin tier, NetworkPolicies, the Baseline tier.
    bool first = true;
    auto separate = [&] { out << (std::exchange(first, false) ? "" : "\n"); };
    for (uint32_t i = 0; i < c.clusterPolicies().size(); ++i)
      if (c.clusterPolicies()[i].policy->tier == Tier::kAdmin) separate(), out << explainClusterPolicy(c, i);
    for (uint32_t i = 0; i < c.policies().size(); ++i)
      separate(), out << explainPolicy(c, i);
    for (uint32_t i = 0; i < c.clusterPolicies().size(); ++i)
      if (c.clusterPolicies()[i].policy->tier == Tier::kBaseline)
        separate(), out << explainClusterPolicy(c, i);
    return 0;
  }
  // namespace/name for a NetworkPolicy; cnp/name, anp/name or banp/name for a cluster policy.
  const std::string& which = args->positionals()[0];
  if (auto cluster = c.findClusterPolicy(which)) {
    out << explainClusterPolicy(c, *cluster);
    return 0;
  }
  auto slash = which.find('/');
  auto id = slash == std::string::npos ? std::nullopt
                                       : c.findPolicy(which.substr(0, slash), which.substr(slash + 1));
  if (!id) {
    err << "nftpol explain: no NetworkPolicy " << which
        << " (give it as namespace/name, or a cluster policy as cnp/name, anp/name or banp/default)\n";
    return kExitBadInput;
  }
  out << explainPolicy(c, *id);
  return 0;
}

int lintCommand(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  auto args = Args::parse(argv, {"cluster"});
  if (!args || !args->positionals().empty() || args->all("cluster").empty()) {
    if (!args) err << "nftpol lint: " << args.error().message << "\n";
    err << "usage: nftpol lint --cluster PATH...\n";
    return kExitBadInput;
  }
  // Lint reports everything, so it loads by itself instead of stopping at the first invalid file.
  ClusterState state;
  std::vector<Diagnostic> diagnostics;
  loadPaths(args->all("cluster"), state, diagnostics);
  auto implied = state.implyMissingNamespaces();
  diagnostics.insert(diagnostics.end(), implied.begin(), implied.end());
  Compiled compiled = Compiled::build(state);
  auto warnings = lint(compiled);
  diagnostics.insert(diagnostics.end(), warnings.begin(), warnings.end());
  size_t errors = 0;
  for (const auto& d : diagnostics) {
    out << d.toString() << "\n";
    errors += d.severity == Severity::kError;
  }
  out << errors << " error(s), " << diagnostics.size() - errors << " warning(s)\n";
  if (errors) return 2;
  return diagnostics.empty() ? 0 : 1;
}

}  // namespace nftpol::cli
