#pragma once

#include <cstdint>
#include <string>

#include "nftpol/policy/cluster.h"

namespace nftpol::bench {

// A synthetic cluster shaped like real ones: namespaces owned by teams and environments, pods of a few apps
// per namespace with realistic labels and named container ports, and a mix of policies (default-deny,
// namespace isolation, app-to-app, ipBlock egress, named ports, port ranges, monitoring scrapes).
// Deterministic from the seed: the same options always give the same cluster.
struct GeneratorOptions {
  uint32_t namespaces = 100;
  uint32_t pods = 1000;
  uint32_t policies = 200;
  uint64_t seed = 1;
  bool dualStack = false;  // every pod also gets an IPv6 address
  // ClusterNetworkPolicies of both tiers (one in five Baseline) with every peer kind, and, when there are
  // any, the pods' 50 Nodes with labels and addresses for their nodes peers. Written after everything else,
  // so the rest of the cluster is the same with or without them.
  uint32_t clusterPolicies = 0;
};

policy::ClusterState generateCluster(const GeneratorOptions& options);

// The same cluster as a YAML stream (what `kubectl get ns,pods,netpol -A -o yaml` would print), for timing
// the loader and for feeding the CLI.
std::string generateYaml(const GeneratorOptions& options);

}  // namespace nftpol::bench
