#include "nftpol/render/flow_log.h"

#include <charconv>
#include <vector>

namespace nftpol::render {

std::string flowLogPrefix(const LoggedDecision& d) {
  if (d.side == LoggedDecision::Side::kNone) return "nftpol allowed";
  std::string out = std::string("nftpol ") +
                    (d.side == LoggedDecision::Side::kEgress ? "egress" : "ingress") +
                    (d.audit     ? " would-deny "
                     : d.allowed ? " allowed "
                                 : " denied ") +
                    d.chainHash;
  if (d.rule) out += " " + std::to_string(*d.rule);
  return out;
}

std::optional<LoggedDecision> parseFlowLogPrefix(std::string_view prefix) {
  std::vector<std::string_view> words;
  while (!prefix.empty()) {
    size_t space = prefix.find(' ');
    words.push_back(prefix.substr(0, space));
    prefix = space == std::string_view::npos ? std::string_view() : prefix.substr(space + 1);
  }
  if (words.empty() || words[0] != "nftpol") return std::nullopt;
  if (words.size() == 2 && words[1] == "allowed") return LoggedDecision{.allowed = true};
  if (words.size() < 4 || words.size() > 5) return std::nullopt;
  LoggedDecision d;
  if (words[1] == "egress")
    d.side = LoggedDecision::Side::kEgress;
  else if (words[1] == "ingress")
    d.side = LoggedDecision::Side::kIngress;
  else
    return std::nullopt;
  if (words[2] != "allowed" && words[2] != "denied" && words[2] != "would-deny") return std::nullopt;
  d.allowed = words[2] == "allowed";
  d.audit = words[2] == "would-deny";
  d.chainHash = std::string(words[3]);
  if (words.size() == 5) {
    int rule = 0;
    auto [end, ec] = std::from_chars(words[4].data(), words[4].data() + words[4].size(), rule);
    if (ec != std::errc() || end != words[4].data() + words[4].size() || rule < 0 || !d.allowed)
      return std::nullopt;
    d.rule = rule;
  }
  return d;
}

}  // namespace nftpol::render
