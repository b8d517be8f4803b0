#pragma once

#include <iosfwd>
#include <optional>
#include <set>
#include <string>

#include "args.h"
#include "nftpol/render/flow_log.h"

namespace nftpol::cli {

// The flow log's kernel side, as `render` and `controller` take it, so that `render` prints what the
// controller programs: on by default; --no-flow-log, --flow-log-group N, --flow-log-allowed,
// --flow-log-rate PER-SECOND.
extern const std::set<std::string> kFlowLogValueOptions;
extern const std::set<std::string> kFlowLogFlags;
constexpr uint16_t kDefaultFlowLogGroup = 7402;
extern const char* const kFlowLogUsage;

// nullopt inside: off. An error is printed to `err`, prefixed by `program`, and returns nothing.
std::optional<std::optional<render::FlowLogOptions>> flowLogOptions(const Args& args,
                                                                    const std::string& program,
                                                                    std::ostream& err);

}  // namespace nftpol::cli
