#pragma once

// nftables' own tracing: a packet with `meta nftrace set 1` makes the kernel report every rule it then meets
// (NFT_MSG_TRACE, multicast group NFNLGRP_NFTRACE). The reader listens in the caller's network namespace and
// hands over each event of one table; it knows nothing of what the chains mean.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "nftpol/nft/nflog.h"
#include "nftpol/result.h"

namespace nftpol::nft {

struct TraceEvent {
  enum class Type : uint8_t { kRule, kReturn, kPolicy, kOther };
  uint32_t id = 0;  // the same for every event of one packet
  Type type = Type::kOther;
  std::string chain;
  uint64_t ruleHandle = 0;  // kRule
  // The verdict the rule (or the chain's policy, or its end) gave: "accept", "drop", "jump", "goto",
  // "return", "continue"; empty when none (a rule that only matched and went on).
  std::string verdict;
  std::string target;   // of a jump or goto
  LoggedPacket packet;  // addresses, protocol and ports (prefix unused), when the event carried the headers
  bool hasPacket = false;
};

class TraceReader {
 public:
  static Result<std::unique_ptr<TraceReader>> open();
  ~TraceReader();
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;
  int fd() const;
  // Reads what waits without blocking; `each` gets the events of `table`.
  Result<size_t> read(const std::string& table, const std::function<void(const TraceEvent&)>& each);

  struct Impl;

 private:
  explicit TraceReader(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nftpol::nft
