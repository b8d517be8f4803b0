#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "nftpol/policy/cluster.h"

namespace nftpol::policy {

// Reads Kubernetes objects from YAML or JSON: single objects, multi-document streams and `kind: List` (or
// typed lists such as PodList) — what `kubectl get ... -o yaml|json` prints. Valid objects go into `state`;
// every problem becomes a Diagnostic, and an object with an error is left out whole. Never throws.
void loadText(std::string_view text, const std::string& fileName, ClusterState& state,
              std::vector<Diagnostic>& diagnostics);

// Files, or directories searched recursively for *.yaml, *.yml and *.json, read in sorted path order.
void loadPaths(const std::vector<std::string>& paths, ClusterState& state,
               std::vector<Diagnostic>& diagnostics);

}  // namespace nftpol::policy
