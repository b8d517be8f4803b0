#pragma once

#include <cstdint>

namespace nftpol {

// The transport protocols NetworkPolicy and Services name, and that nftables matches.
enum class Protocol : uint8_t { kTCP, kUDP, kSCTP };

// A protocol and an inclusive port range; 0-65535 means every port of the protocol.
struct PortRange {
  Protocol protocol = Protocol::kTCP;
  uint16_t first = 0;
  uint16_t last = 65535;
  bool allPorts() const { return first == 0 && last == 65535; }
  bool operator==(const PortRange&) const = default;
};

}  // namespace nftpol
