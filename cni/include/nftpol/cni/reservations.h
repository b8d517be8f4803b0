#pragma once

// What Debian's host-local (1.1.1) keeps on disk: one file per reserved address under
// `ipam.dataDir`/<network>, named by the address and holding "containerID\r\nifname". GC reads it to find
// stale reservations, DEL to find a pod's addresses when the runtime passes no prevResult, STATUS to tell a
// full pool.

#include <optional>
#include <string>
#include <vector>

#include "nftpol/cni/config.h"
#include "nftpol/ip.h"

namespace nftpol::cni {

struct Reservation {
  IpAddress address;
  Attachment attachment;
};

std::vector<Reservation> hostLocalReservations(const NetConf& conf);

// The address ranges host-local hands out from, as `ipam.ranges` (or the older `ipam.subnet`) state them: one
// entry per range set, each a list of ranges. Empty when the config names none (another IPAM plugin).
struct AddressPoolRange {
  Cidr subnet;
  IpAddress first, last;  // rangeStart and rangeEnd, or the subnet's first and last usable address
  std::optional<IpAddress> gateway;
};
using RangeSet = std::vector<AddressPoolRange>;
Result<std::vector<RangeSet>> hostLocalRanges(const std::string& configJson);

// A range set with no address left: host-local's ADD would fail. nullopt when every set has one.
std::optional<std::string> exhaustedRangeSet(const std::vector<RangeSet>& sets,
                                             const std::vector<Reservation>& reserved);

}  // namespace nftpol::cni
