#include "nftpol/cni/environment.h"

#include <algorithm>
#include <cctype>
#include <string_view>

namespace nftpol::cni {

namespace {

Failure invalid(std::string msg, std::string details = "") {
  return Failure{Code::kInvalidEnvironment, std::move(msg), std::move(details)};
}

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  size_t from = 0;
  while (from <= text.size()) {
    size_t at = text.find(separator, from);
    if (at == std::string::npos) at = text.size();
    if (at > from) parts.push_back(text.substr(from, at - from));
    from = at + 1;
  }
  return parts;
}

}  // namespace

bool isValidCniName(const std::string& name) {
  return !name.empty() && std::isalnum(static_cast<unsigned char>(name[0])) &&
         std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '.' || c == '-'; });
}

bool isValidInterfaceName(const std::string& name) {
  if (name.empty() || name.size() > 15 || name == "." || name == "..") return false;
  return std::none_of(name.begin(), name.end(),
                      [](unsigned char c) { return c == '/' || c == ':' || std::isspace(c); });
}

Outcome<Environment> readEnvironment(const std::function<std::optional<std::string>(const char*)>& get) {
  auto command = get("CNI_COMMAND");
  if (!command || command->empty()) return invalid("CNI_COMMAND is not set");
  static constexpr std::pair<std::string_view, Command> kCommands[] = {
      {"ADD", Command::kAdd},         {"DEL", Command::kDel},       {"CHECK", Command::kCheck},
      {"VERSION", Command::kVersion}, {"STATUS", Command::kStatus}, {"GC", Command::kGc}};
  auto known = std::find_if(std::begin(kCommands), std::end(kCommands),
                            [&](const auto& c) { return c.first == *command; });
  if (known == std::end(kCommands))
    return invalid("unknown CNI_COMMAND \"" + *command + "\"",
                   "expected ADD, DEL, CHECK, VERSION, STATUS or GC");
  Environment env{};
  env.command = known->second;
  if (env.command == Command::kVersion) return env;
  if (auto path = get("CNI_PATH")) env.path = split(*path, ':');
  if (env.command == Command::kStatus || env.command == Command::kGc) return env;

  // ADD, DEL and CHECK act on one attachment: (container, interface).
  auto id = get("CNI_CONTAINERID");
  if (!id || id->empty()) return invalid("CNI_CONTAINERID is not set");
  if (!isValidCniName(*id))
    return invalid("invalid CNI_CONTAINERID \"" + *id + "\"",
                   "must start with a letter or digit and hold only letters, digits, '_', '.' and '-'");
  env.containerId = *id;
  auto ifname = get("CNI_IFNAME");
  if (!ifname || ifname->empty()) return invalid("CNI_IFNAME is not set");
  if (!isValidInterfaceName(*ifname))
    return invalid("invalid CNI_IFNAME \"" + *ifname + "\"",
                   "an interface name has 1 to 15 characters and no '/', ':' or whitespace");
  env.ifname = *ifname;
  auto netns = get("CNI_NETNS");
  // DEL must succeed when the runtime has already lost the namespace, so it may come without one.
  if ((!netns || netns->empty()) && env.command != Command::kDel) return invalid("CNI_NETNS is not set");
  if (netns) env.netns = *netns;
  if (auto args = get("CNI_ARGS")) {
    for (const auto& pair : split(*args, ';')) {
      size_t eq = pair.find('=');
      if (eq == std::string::npos || eq == 0)
        return invalid("invalid CNI_ARGS entry \"" + pair + "\"",
                       "expected KEY=VALUE pairs separated by ';'");
      env.args.emplace_back(pair.substr(0, eq), pair.substr(eq + 1));
    }
  }
  if (env.path.empty()) return invalid("CNI_PATH is not set", "the IPAM plugin is looked up there");
  return env;
}

}  // namespace nftpol::cni
