#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nftpol/policy/compiled.h"

namespace nftpol::policy {

// "ns/a, ns/b", or "no pods".
std::string podList(const Compiled& compiled, const std::vector<PodId>& pods);

// Human-readable account of one policy: the pods it selects, and for each rule the peers resolved to pods,
// namespaces and CIDRs, and the ports with named ports resolved per pod.
std::string explainPolicy(const Compiled& compiled, uint32_t policyId);

// Warnings about policies that are valid but probably not what their author meant: a policy that selects no
// pod, a peer that matches nothing, a named port that resolves on no pod, a rule shadowed by an allow-all
// rule.
std::vector<Diagnostic> lint(const Compiled& compiled);

// The same for a cluster policy (explain_cluster.cpp): its tier and place in the evaluation order, the pods
// its subject selects, and each rule's action, peers resolved and ports.
std::string explainClusterPolicy(const Compiled& compiled, uint32_t clusterPolicyId);
// Cluster policies that select no pod, rules that match no peer, rules shadowed by an earlier rule of the
// same or a higher-precedence policy, and equal priorities in one tier whose rules overlap with different
// actions. lint() includes these.
std::vector<Diagnostic> lintClusterPolicies(const Compiled& compiled);

}  // namespace nftpol::policy
