#pragma once

// What the kernel tells the flow log: each log rule carries a prefix that names the decision it sits before,
// and the controller reads the decision back from it. The prefix names the chain by its content hash, never
// by a counter: the hash stays while the chain's content does, so log rules are never rewritten by commits
// that do not change them, and a record read after its chain left the table still names what decided it.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace nftpol::render {

// Flow logging as the table renders it; off when a NodeTable has none.
struct FlowLogOptions {
  uint16_t group = 0;             // nfnetlink_log group
  bool allowed = false;           // also the first packet of each new connection that the policies allow
  uint32_t ratePerSecond = 1000;  // per log rule; over it the packet is not logged (and counted as lost)
  uint32_t burst = 200;
  uint16_t snaplen = 96;  // enough for IPv6 with a few extension bytes and the ports
  bool operator==(const FlowLogOptions&) const = default;
};

// The packet mark bit that says the connection was addressed to a service (ct status dnat), set before the
// verdicts so that the log shows it (the kernel's log carries the mark, not the original tuple).
constexpr uint32_t kTranslatedMark = 0x2000;

// The named counter every log rule counts into before its rate limit: what it offered to the log. Less what
// the log group delivered, it is what the limits held back.
constexpr const char* kFlowLogCounter = "flow-log-offered";

// The sets `nftpol trace` arms (see chain_builder.h): "trace-sources-v4", "trace-destinations-v6".
inline std::string traceSetName(bool sources, bool v4) {
  return std::string(sources ? "trace-sources" : "trace-destinations") + (v4 ? "-v4" : "-v6");
}

// One decision a log rule sits before.
struct LoggedDecision {
  enum class Side : uint8_t { kEgress, kIngress, kNone };  // kNone: no policy isolates the destination here
  Side side = Side::kNone;
  bool allowed = false;
  std::string chainHash;    // the policy chain's content hash; empty for kNone
  std::optional<int> rule;  // an allowing rule's index among its chain's allowing rules
  bool audit = false;       // an audit chain's: allowed, and would be denied were the policies in audit mode
                            // enforced (allowed is false)
  bool operator==(const LoggedDecision&) const = default;
};

// "nftpol ingress denied <hash>", "nftpol ingress allowed <hash> 2", "nftpol egress allowed -",
// "nftpol allowed", "nftpol egress would-deny <hash>".
std::string flowLogPrefix(const LoggedDecision& d);
std::optional<LoggedDecision> parseFlowLogPrefix(std::string_view prefix);

}  // namespace nftpol::render
