#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nftpol/policy/compiled.h"

namespace nftpol::policy {

// Human-readable account of one policy: the pods it selects, and for each rule the peers resolved to pods,
// namespaces and CIDRs, and the ports with named ports resolved per pod.
std::string explainPolicy(const Compiled& compiled, uint32_t policyId);

// Warnings about policies that are valid but probably not what their author meant: a policy that selects no
// pod, a peer that matches nothing, a named port that resolves on no pod, a rule shadowed by an allow-all
// rule.
std::vector<Diagnostic> lint(const Compiled& compiled);

}  // namespace nftpol::policy
