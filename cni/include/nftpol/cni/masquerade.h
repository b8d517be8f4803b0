#pragma once

// ipMasq, as the reference bridge plugin means it: connections from a pod's subnet to anywhere outside that
// subnet (multicast aside) leave the node with the node's address. nftpol-bridge keeps this in a table of its
// own, `table inet nftpol-bridge`, apart from the controller's `inet nftpol` (which removes anything it did
// not render): one NAT base chain per network and subnet, named from them, holding one rule. Every ADD
// rewrites its chain in one transaction, so parallel ADDs leave exactly one rule, and no per-pod state is
// kept: DEL and GC leave the chain, like the bridge, to the network.

#include "nftpol/cni/config.h"
#include "nftpol/cni/ipam.h"

namespace nftpol::cni {

inline constexpr const char* kMasqueradeTable = "nftpol-bridge";

Outcome<bool> ensureMasquerade(const NetConf& conf, const IpamResult& ipam);

}  // namespace nftpol::cni
