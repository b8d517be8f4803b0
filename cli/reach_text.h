#pragma once

// can-reach's words, for the commands that print a verdict beside something else (trace).
#include <ostream>
#include <string>
#include <vector>

#include "nftpol/policy/reach.h"

namespace nftpol::cli {

// "namespace/pod", or the address of an end outside the cluster.
std::string endpointName(const policy::Compiled& c, const policy::Endpoint& e);
// The per-family verdict lines that follow can-reach's first line, each side's policies and rules.
void printVerdicts(const policy::Compiled& c, const std::vector<policy::Verdict>& verdicts,
                   const std::string& fromName, const std::string& toName, const std::string& indent,
                   std::ostream& out);

}  // namespace nftpol::cli
