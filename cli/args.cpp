#include "args.h"

#include <charconv>
#include <cstdio>

namespace nftpol::cli {

Result<Args> Args::parse(const std::vector<std::string>& argv, const std::set<std::string>& withValue,
                         const std::set<std::string>& flags) {
  Args a;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg.size() > 2 && arg.starts_with("--")) {
      std::string name = arg.substr(2), value;
      bool inlineValue = false;
      if (auto eq = name.find('='); eq != std::string::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
        inlineValue = true;
      }
      if (flags.count(name) && !inlineValue) {
        a.flags_.insert(name);
      } else if (withValue.count(name)) {
        if (!inlineValue) {
          if (i + 1 >= argv.size()) return Error{"option --" + name + " needs a value"};
          value = argv[++i];
        }
        a.options_[name].push_back(value);
      } else {
        return Error{"unknown option --" + name};
      }
    } else {
      a.positionals_.push_back(arg);
    }
  }
  return a;
}

const std::vector<std::string>& Args::all(const std::string& option) const {
  static const std::vector<std::string> kNone;
  auto it = options_.find(option);
  return it == options_.end() ? kNone : it->second;
}

std::optional<std::string> Args::last(const std::string& option) const {
  const auto& values = all(option);
  if (values.empty()) return std::nullopt;
  return values.back();
}

namespace {

Result<policy::Protocol> parseProtocolArg(const std::optional<std::string>& text) {
  if (!text) return policy::Protocol::kTCP;
  std::string upper;
  for (char ch : *text)
    upper += static_cast<char>(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
  if (auto p = policy::parseProtocol(upper)) return *p;
  return Error{"invalid --protocol \"" + *text + "\" (must be TCP, UDP or SCTP)"};
}

Result<uint16_t> parsePortArg(const std::optional<std::string>& text) {
  if (!text) return Error{"--port is required"};
  int v = 0;
  auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || end != text->data() + text->size() || v < 1 || v > 65535)
    return Error{"invalid --port \"" + *text + "\" (must be a number between 1 and 65535)"};
  return static_cast<uint16_t>(v);
}

}  // namespace

std::string PortArg::toString() const {
  return std::string(policy::toString(protocol)) + "/" + std::to_string(port);
}

Result<PortArg> parsePortArg(const Args& args) {
  auto protocol = parseProtocolArg(args.last("protocol"));
  if (!protocol) return protocol.error();
  auto port = parsePortArg(args.last("port"));
  if (!port) return port.error();
  return PortArg{*protocol, *port};
}

}  // namespace nftpol::cli
