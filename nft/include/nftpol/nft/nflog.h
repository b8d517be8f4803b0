#pragma once

// nfnetlink_log: the packets that `log group N` rules copy to user space. The reader binds one group in the
// caller's network namespace (the table's: no sysctl is involved, unlike `log` to the kernel's ring buffer)
// and hands over each packet's prefix, addresses, protocol and ports, and mark. It knows nothing of what the
// prefixes mean.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "nftpol/ip.h"
#include "nftpol/result.h"

namespace nftpol::nft {

struct LoggedPacket {
  std::string prefix;
  IpAddress source = IpAddress::fromBytes(Family::kV4, {});
  IpAddress destination = source;
  uint8_t protocol = 0;     // IP protocol number
  uint16_t sourcePort = 0;  // TCP, UDP and SCTP; 0 for others
  uint16_t destinationPort = 0;
  uint32_t mark = 0;
  uint32_t sequence = 0;  // the group's own count of the packets it logged
};

// What the reader knows it missed: packets the kernel counted (its sequence numbers) but never delivered,
// and receive-buffer overruns (ENOBUFS, each losing an unknown number of them; the gaps count those too).
struct LogLosses {
  uint64_t numbered = 0;  // packets the group numbered since it was bound: delivered, or lost in the gaps
  uint64_t sequenceGaps = 0;
  uint64_t overruns = 0;
  uint64_t unreadable = 0;  // messages too short or of another family to decode
};

class NflogReader {
 public:
  // Binds `group`, asks for the first `snaplen` bytes of each packet and for sequence numbers, and has the
  // kernel send at most `batchDelay` late (it batches packets into one message under load).
  static Result<std::unique_ptr<NflogReader>> open(uint16_t group, uint16_t snaplen,
                                                   std::chrono::milliseconds batchDelay);
  ~NflogReader();
  NflogReader(const NflogReader&) = delete;
  NflogReader& operator=(const NflogReader&) = delete;

  int fd() const;  // readable when packets wait
  // Reads what waits, without blocking, and calls `each` per packet; returns how many. An error is the
  // socket's, other than an overrun (which counts and goes on).
  Result<size_t> read(const std::function<void(const LoggedPacket&)>& each);
  const LogLosses& losses() const { return losses_; }

  struct Impl;

 private:
  explicit NflogReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  LogLosses losses_;
};

// One IPv4 or IPv6 packet's addresses, protocol and ports from its first bytes (extension headers skipped);
// false when they are too short or not IP. Exposed for tests.
bool decodePacketHeaders(const uint8_t* data, size_t length, LoggedPacket& out);

}  // namespace nftpol::nft
