#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "nftpol/json.h"
#include "nftpol/policy/objects.h"
#include "nftpol/result.h"

namespace nftpol::cli {

// Parsed command line of one subcommand: options (repeatable ones keep every value) and positionals.
class Args {
 public:
  // `withValue` names the options that take a value; `flags` those that do not. Anything else is an error.
  static Result<Args> parse(const std::vector<std::string>& argv, const std::set<std::string>& withValue,
                            const std::set<std::string>& flags = {});

  const std::vector<std::string>& all(const std::string& option) const;
  std::optional<std::string> last(const std::string& option) const;
  bool flag(const std::string& option) const { return flags_.count(option) > 0; }
  const std::vector<std::string>& positionals() const { return positionals_; }

 private:
  std::map<std::string, std::vector<std::string>> options_;
  std::set<std::string> flags_;
  std::vector<std::string> positionals_;
};

// The destination of a simulated connection: --port (required, 1-65535) and --protocol (default TCP).
struct PortArg {
  policy::Protocol protocol;
  uint16_t port;
  std::string toString() const;  // "TCP/80"
};
Result<PortArg> parsePortArg(const Args& args);

// JSON string literal with escapes.
using nftpol::jsonString;

}  // namespace nftpol::cli
