#pragma once

#include <string>
#include <vector>

#include "nftpol/nft/ruleset.h"

namespace nftpol::nft {

// The first packet of a new connection, as the forward hook sees it (after any service DNAT).
struct Packet {
  IpAddress source;
  IpAddress destination;
  Protocol protocol;
  uint16_t port;
};

struct Trace {
  bool accepted = false;
  std::vector<std::string> path;  // "chain: rule" for every rule that matched, in order
};

// Evaluates the table's forward base chain for the packet, as the kernel would: verdict maps, jumps, returns,
// sets (interval and concatenated), and the chain policy at the end. Cheap and rootless, so tests can check
// the rendered rules against the simulator on every pod pair.
Trace trace(const Table& table, const Packet& packet);

}  // namespace nftpol::nft
