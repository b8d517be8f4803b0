#include "nftpol/policy/objects.h"

namespace nftpol::policy {

std::string SourceLocation::toString() const {
  std::string name = file ? *file : std::string("<input>");
  if (line == 0) return name;  // the whole file: it could not be read at all
  return name + ":" + std::to_string(line) + ":" + std::to_string(column);
}

std::string_view toString(Protocol p) {
  switch (p) {
    case Protocol::kTCP:
      return "TCP";
    case Protocol::kUDP:
      return "UDP";
    case Protocol::kSCTP:
      return "SCTP";
  }
  return "?";
}

std::optional<Protocol> parseProtocol(std::string_view text) {
  if (text == "TCP") return Protocol::kTCP;
  if (text == "UDP") return Protocol::kUDP;
  if (text == "SCTP") return Protocol::kSCTP;
  return std::nullopt;
}

std::string_view toString(Direction d) {
  return d == Direction::kIngress ? "ingress" : "egress";
}

std::string_view toString(Tier t) {
  return t == Tier::kAdmin ? "Admin" : "Baseline";
}

std::string_view toString(Action a) {
  switch (a) {
    case Action::kAccept:
      return "Accept";
    case Action::kDeny:
      return "Deny";
    case Action::kPass:
      return "Pass";
  }
  return "?";
}

std::string_view shortName(ClusterPolicyKind k) {
  switch (k) {
    case ClusterPolicyKind::kClusterNetworkPolicy:
      return "cnp";
    case ClusterPolicyKind::kAdminNetworkPolicy:
      return "anp";
    case ClusterPolicyKind::kBaselineAdminNetworkPolicy:
      return "banp";
  }
  return "?";
}

std::string_view kindName(ClusterPolicyKind k) {
  switch (k) {
    case ClusterPolicyKind::kClusterNetworkPolicy:
      return "ClusterNetworkPolicy";
    case ClusterPolicyKind::kAdminNetworkPolicy:
      return "AdminNetworkPolicy";
    case ClusterPolicyKind::kBaselineAdminNetworkPolicy:
      return "BaselineAdminNetworkPolicy";
  }
  return "?";
}

std::optional<size_t> ClusterRule::unreadablePeer() const {
  for (size_t i = 0; i < peers.size(); ++i)
    if (std::holds_alternative<UnknownPeer>(peers[i])) return i;
  return std::nullopt;
}

const IpAddress* Pod::address(Family f) const {
  for (const auto& ip : ips)
    if (ip.family() == f) return &ip;
  return nullptr;
}

std::optional<uint16_t> Pod::namedPort(std::string_view portName, Protocol protocol) const {
  for (const auto& p : ports)
    if (p.name == portName && p.protocol == protocol) return p.port;
  return std::nullopt;
}

std::string PortSpec::toString() const {
  std::string out(policy::toString(protocol));
  out += '/';
  if (std::holds_alternative<AllPorts>(port)) {
    out += '*';
  } else if (const auto* name = std::get_if<std::string>(&port)) {
    out += *name;
  } else {
    auto r = std::get<Range>(port);
    out += std::to_string(r.first);
    if (r.last != r.first) {
      out += '-';
      out += std::to_string(r.last);
    }
  }
  return out;
}

bool IpBlock::contains(const IpAddress& ip) const {
  if (!cidr.contains(ip)) return false;
  for (const auto& e : except)
    if (e.contains(ip)) return false;
  return true;
}

std::string IpBlock::toString() const {
  std::string out = cidr.toString();
  for (size_t i = 0; i < except.size(); ++i)
    out += (i ? ", " : " except ") + except[i].toString();
  return out;
}

}  // namespace nftpol::policy
