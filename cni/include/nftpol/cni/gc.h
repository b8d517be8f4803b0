#pragma once

// GC (CNI 1.1.0): release everything of this network that no valid attachment holds, i.e. what a crashed
// runtime or a lost DEL left behind: the host ends of pod veths on our bridge and IPAM reservations.

#include <string>

#include "nftpol/cni/config.h"
#include "nftpol/cni/environment.h"

namespace nftpol::cni {

// IPAM plugins that speak 1.1.0 get the GC call themselves. Debian's host-local (1.1.1) does not, so its
// reservations (one file per address under `ipam.dataDir`/<network>, holding "containerID\r\nifname") are
// read, and each stale one is released by a DEL to host-local for that attachment: host-local still does the
// release.
Outcome<std::string> collectGarbage(const NetConf& conf, const Environment& env);

}  // namespace nftpol::cni
