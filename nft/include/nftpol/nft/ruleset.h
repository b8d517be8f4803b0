#pragma once

// A pure in-memory model of one nftables table, named as nftables names things (Table, Set, Map, Chain, Rule)
// so that someone who knows `nft` knows this API. Rules are structured statements, not strings: the same
// model prints as `nft -f` text and (in the netlink backend) becomes libnftnl expressions.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "nftpol/ip.h"
#include "nftpol/policy/compiled.h"

namespace nftpol::nft {

using policy::PortMatch;
using policy::Protocol;

enum class Field : uint8_t { kSource, kDestination };

// A protocol as nftables and the kernel name it: the `meta l4proto` keyword and the IP protocol number (which
// also orders concatenated set keys). The one table of it in the project.
const char* nftKeyword(Protocol p);    // "tcp", "udp", "sctp"
uint8_t ipProtocolNumber(Protocol p);  // 6, 17, 132
std::optional<Protocol> protocolFromNumber(uint8_t number);
std::optional<Protocol> protocolFromKeyword(std::string_view keyword);

// ct state established,related (or invalid).
struct CtState {
  std::vector<std::string> states;
  bool operator==(const CtState&) const = default;
};
// ip saddr @set / ip6 daddr @set
struct AddressInSet {
  Family family;
  Field field;
  std::string set;
  bool operator==(const AddressInSet&) const = default;
};
// tcp dport 80 / udp dport 53-60 / meta l4proto sctp. One per rule: a rule with several port entries becomes
// several rules, which keeps every rule a plain compare over netlink (no anonymous concatenated interval
// sets).
struct PortIs {
  PortMatch port;
  bool operator==(const PortIs&) const = default;
};
// ip daddr . meta l4proto . th dport @set
struct DestinationPortInSet {
  Family family;
  std::string set;
  bool operator==(const DestinationPortInSet&) const = default;
};
using Match = std::variant<CtState, AddressInSet, PortIs, DestinationPortInSet>;

struct Verdict {
  enum class Kind : uint8_t { kAccept, kDrop, kReturn, kJump };
  Kind kind;
  std::string chain;  // for kJump
  bool operator==(const Verdict&) const = default;
};
// ip saddr vmap @map
struct VerdictMapLookup {
  Family family;
  Field field;
  std::string map;
  bool operator==(const VerdictMapLookup&) const = default;
};

struct Rule {
  std::vector<Match> matches;
  std::variant<Verdict, VerdictMapLookup> action;
  std::string comment;
  bool operator==(const Rule&) const = default;
};

// A named set; with `verdicts`, a verdict map whose elements map a key to `jump <chain>`.
struct Set {
  std::string name;
  std::string type;  // "ipv4_addr", "ipv4_addr . inet_proto . inet_service", ...
  bool interval = false;
  std::vector<std::string> elements;                          // for sets, in nft syntax
  std::vector<std::pair<std::string, std::string>> verdicts;  // for maps: key -> chain to jump to
  bool isMap = false;
  std::string comment;
  bool operator==(const Set&) const = default;
};

struct BaseChain {
  std::string type;  // "filter"
  std::string hook;  // "forward"
  int priority = 0;
  std::string policy;  // "accept"
  bool operator==(const BaseChain&) const = default;
};

struct Chain {
  std::string name;
  std::optional<BaseChain> base;
  std::vector<Rule> rules;
  std::string comment;
  bool operator==(const Chain&) const = default;
};

struct Table {
  std::string family = "inet";
  std::string name = "nftpol";
  std::vector<Set> sets;      // sorted by name
  std::vector<Chain> chains;  // base chains first, then by name
  bool operator==(const Table&) const = default;

  const Set* findSet(const std::string& name) const;
  const Chain* findChain(const std::string& name) const;
};

// `nft -f` text: what `nftpol render` prints and what `nft list table inet nftpol` prints back.
std::string toText(const Table& table);
std::string toText(const Rule& rule);

// Prints an address range as nft does: a prefix when it is exactly one, else "first-last".
std::string rangeText(const IpAddress& first, const IpAddress& last);
// The ranges an ipBlock covers (cidr minus every except), sorted, as nft interval elements.
std::vector<std::string> blockElements(const policy::IpBlock& block);

}  // namespace nftpol::nft
