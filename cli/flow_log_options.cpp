#include "flow_log_options.h"

#include <cstdlib>
#include <ostream>

namespace nftpol::cli {

const std::set<std::string> kFlowLogValueOptions = {"flow-log-group", "flow-log-rate"};
const std::set<std::string> kFlowLogFlags = {"no-flow-log", "flow-log-allowed"};
const char* const kFlowLogUsage =
    "[--no-flow-log | [--flow-log-group N] [--flow-log-allowed] [--flow-log-rate N]]";

namespace {
std::optional<unsigned long> number(const std::optional<std::string>& text, unsigned long min,
                                    unsigned long max) {
  if (!text) return std::nullopt;
  char* end = nullptr;
  unsigned long v = std::strtoul(text->c_str(), &end, 10);
  if (text->empty() || *end || (*text)[0] == '-' || v < min || v > max) return 0;  // 0 is below every min
  return v;
}
}  // namespace

std::optional<std::optional<render::FlowLogOptions>> flowLogOptions(const Args& args,
                                                                    const std::string& program,
                                                                    std::ostream& err) {
  bool off = args.flag("no-flow-log");
  if (off && (args.flag("flow-log-allowed") || args.last("flow-log-group") || args.last("flow-log-rate"))) {
    err << program << ": --no-flow-log and another --flow-log option\n";
    return std::nullopt;
  }
  if (off) return std::optional<render::FlowLogOptions>{};
  render::FlowLogOptions o{.group = kDefaultFlowLogGroup, .allowed = args.flag("flow-log-allowed")};
  if (auto group = number(args.last("flow-log-group"), 1, 65535)) {
    if (*group == 0) {
      err << program << ": --flow-log-group: a number from 1 to 65535\n";
      return std::nullopt;
    }
    o.group = static_cast<uint16_t>(*group);
  }
  if (auto rate = number(args.last("flow-log-rate"), 1, 1000000)) {
    if (*rate == 0) {
      err << program << ": --flow-log-rate: log records a second per rule, 1 to 1000000\n";
      return std::nullopt;
    }
    o.ratePerSecond = static_cast<uint32_t>(*rate);
    o.burst = std::max<uint32_t>(o.ratePerSecond / 5, 6);  // nft leaves out a burst of 5 when it lists a rule
  }
  return std::optional<render::FlowLogOptions>{o};
}

}  // namespace nftpol::cli
