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
#include "nftpol/protocol.h"

namespace nftpol::nft {

enum class Field : uint8_t { kSource, kDestination };

// A protocol as nftables and the kernel name it: the `meta l4proto` keyword and the IP protocol number (which
// also orders concatenated set keys). The one table of it in the project.
const char* nftKeyword(Protocol p);    // "tcp", "udp", "sctp"
uint8_t ipProtocolNumber(Protocol p);  // 6, 17, 132
std::optional<Protocol> protocolFromNumber(uint8_t number);
std::optional<Protocol> protocolFromKeyword(std::string_view keyword);

// A connection's state as conntrack tracks it; the values are the kernel's ct state bits.
enum class ConnState : uint32_t { kInvalid = 1, kEstablished = 2, kRelated = 4, kNew = 8 };
const char* toString(ConnState s);  // "established"

// ct state established,related (or invalid).
struct CtState {
  std::vector<ConnState> states;
  bool operator==(const CtState&) const = default;
};
// ip saddr @set / ip6 daddr @set, or with `negated` ip saddr != @set
struct AddressInSet {
  Family family;
  Field field;
  std::string set;
  bool negated = false;
  bool operator==(const AddressInSet&) const = default;
};
// tcp dport 80 / udp dport 53-60 / meta l4proto sctp. One per rule: a rule with several port entries becomes
// several rules, which keeps every rule a plain compare over netlink (no anonymous concatenated interval
// sets).
struct PortIs {
  PortRange port;
  bool operator==(const PortIs&) const = default;
};
// ip daddr . meta l4proto . th dport @set
struct DestinationPortInSet {
  Family family;
  std::string set;
  bool operator==(const DestinationPortInSet&) const = default;
};
// ip saddr 10.244.1.3
struct AddressIs {
  Family family;
  Field field;
  IpAddress address;
  bool operator==(const AddressIs&) const = default;
};
// meta mark & 0x00004000 == 0x00004000 (the packet's mark), or ct mark & … (its connection's).
struct MarkHas {
  enum class Of : uint8_t { kPacket, kConnection };
  uint32_t bit;
  Of of = Of::kPacket;
  bool operator==(const MarkHas&) const = default;
};
// fib daddr type local: the packet is addressed to one of the node's own addresses (NodePorts).
struct ToLocalAddress {
  bool operator==(const ToLocalAddress&) const = default;
};
// ip saddr 10.244.1.0/24, or with `negated` ip daddr != 224.0.0.0/4
struct AddressInPrefix {
  Field field;
  Cidr prefix;
  bool negated = false;
  bool operator==(const AddressInPrefix&) const = default;
};
// meta nfproto ipv4
struct FamilyIs {
  Family family;
  bool operator==(const FamilyIs&) const = default;
};
// fib daddr type local meta l4proto . th dport @set (a set keyed by protocol and port)
struct LocalProtocolPortInSet {
  std::string set;
  bool operator==(const LocalProtocolPortInSet&) const = default;
};
// ct status dnat: the connection's destination was translated (it was addressed to a service).
struct Translated {
  bool operator==(const Translated&) const = default;
};
using Match = std::variant<CtState, AddressInSet, PortIs, DestinationPortInSet, AddressIs, MarkHas,
                           ToLocalAddress, FamilyIs, LocalProtocolPortInSet, AddressInPrefix, Translated>;

// What a rule does before its verdict.
// meta mark set meta mark | 0x00004000
struct SetMarkBit {
  uint32_t bit;
  bool operator==(const SetMarkBit&) const = default;
};
// update @set { ip saddr }: refreshes the address's entry in a dynamic set with timeout (session affinity).
struct UpdateAddressSet {
  Family family;
  Field field;
  std::string set;
  bool operator==(const UpdateAddressSet&) const = default;
};
// limit rate 1000/second burst 100 packets log prefix "…" group 7 snaplen 80: the packet's first `snaplen`
// bytes and `prefix` to nfnetlink_log group `group`, at most `ratePerSecond` a second. Over the rate the
// limit skips the rest of its rule, so a log must sit in a rule without a verdict of its own: then logging
// never changes one.
struct LogToGroup {
  std::string counter;  // counter name "…" before the limit: every packet offered to the log (empty: none)
  uint16_t group;
  uint16_t snaplen;
  std::string prefix;  // at most 127 bytes
  uint32_t ratePerSecond;
  uint32_t burst;
  bool operator==(const LogToGroup&) const = default;
};
// meta nftrace set 1: the kernel reports every later rule this packet meets (NFT_MSG_TRACE) while it is in
// this table's chains.
struct TraceOn {
  bool operator==(const TraceOn&) const = default;
};
using Statement = std::variant<SetMarkBit, UpdateAddressSet, LogToGroup, TraceOn>;

struct Verdict {
  // kGoto: like kJump, but a return from the chain gone to returns from this one too.
  enum class Kind : uint8_t { kAccept, kDrop, kReturn, kJump, kGoto };
  Kind kind;
  std::string chain;  // for kJump and kGoto
  bool operator==(const Verdict&) const = default;
};
// A verdict map lookup, by its key:
//   kAddress             ip saddr vmap @map
//   kAddressProtocolPort ip daddr . meta l4proto . th dport vmap @map
//   kLocalProtocolPort   fib daddr type local meta l4proto . th dport vmap @map
//   kRandom              numgen random mod N vmap @map
struct VerdictMapLookup {
  enum class Key : uint8_t { kAddress, kAddressProtocolPort, kLocalProtocolPort, kRandom };
  Family family = Family::kV4;
  Field field = Field::kDestination;
  std::string map;
  Key key = Key::kAddress;
  uint32_t modulus = 0;  // kRandom
  bool operator==(const VerdictMapLookup&) const = default;
};
// dnat ip to 10.244.1.3:8080 (the rule matches the protocol first, as nft requires for a port).
struct Dnat {
  IpAddress address;
  uint16_t port;
  bool operator==(const Dnat&) const = default;
};
struct Masquerade {
  bool operator==(const Masquerade&) const = default;
};
// reject with tcp reset, or with the family's ICMP port unreachable (ICMPx when the rule fixes no family).
struct Reject {
  bool tcpReset = false;
  std::optional<Family> family;
  bool operator==(const Reject&) const = default;
};
// No verdict: the rule only carries out its statements, and evaluation goes on with the next rule.
struct Continue {
  bool operator==(const Continue&) const = default;
};
using Action = std::variant<Verdict, VerdictMapLookup, Dnat, Masquerade, Reject, Continue>;

struct Rule {
  std::vector<Match> matches;
  Action action;
  std::string comment;
  std::vector<Statement> statements;  // carried out, in order, after the matches and before the action
  bool operator==(const Rule&) const = default;
};

// Element keys, as structured values: what a set holds or a map maps from.
// An address range of an interval set (one address when first == last); printed as nft prints it, a prefix
// when it is exactly one.
struct AddressRange {
  IpAddress first, last;
  bool operator==(const AddressRange&) const = default;
};
// address . protocol . port, as `ip daddr . meta l4proto . th dport` reads it.
struct AddressProtocolPort {
  IpAddress address;
  Protocol protocol;
  uint16_t port;
  bool operator==(const AddressProtocolPort&) const = default;
};
// protocol . port, as `meta l4proto . th dport` reads it (node ports).
struct ProtocolPort {
  Protocol protocol;
  uint16_t port;
  bool operator==(const ProtocolPort&) const = default;
};
// A value of `numgen random mod N`.
struct Slot {
  uint32_t value;
  bool operator==(const Slot&) const = default;
};
using Key = std::variant<IpAddress, AddressRange, AddressProtocolPort, ProtocolPort, Slot>;
std::string toString(const Key& key);  // "10.0.0.1", "10.0.0.0/24", "10.0.0.1 . tcp . 80", "tcp . 30080", "3"

// What a set's or map's keys are; a key of another kind never enters it (Table::check).
struct KeyType {
  enum class Kind : uint8_t { kAddress, kAddressProtocolPort, kProtocolPort, kRandom };
  Kind kind = Kind::kAddress;
  Family family = Family::kV4;  // of the address, for kAddress and kAddressProtocolPort
  uint32_t modulus = 0;         // kRandom: numgen random mod `modulus`
  bool operator==(const KeyType&) const = default;

  static KeyType address(Family f) { return {Kind::kAddress, f, 0}; }
  static KeyType addressProtocolPort(Family f) { return {Kind::kAddressProtocolPort, f, 0}; }
  static KeyType protocolPort() { return {Kind::kProtocolPort, Family::kV4, 0}; }
  static KeyType random(uint32_t modulus) { return {Kind::kRandom, Family::kV4, modulus}; }
  bool admits(const Key& key) const;
};
// nft's declaration: "type ipv4_addr", "type ipv6_addr . inet_proto . inet_service", "type inet_proto .
// inet_service", "typeof numgen random mod 3".
std::string toString(const KeyType& type);

// A named set of keys.
struct Set {
  std::string name;
  KeyType key;
  bool interval = false;      // elements are AddressRanges
  std::vector<Key> elements;  // in the order they print
  std::string comment;
  // A set the data path fills (`update @set`), whose entries expire after `timeoutSeconds`: its elements are
  // the kernel's, never ours to compare or repair.
  bool dynamic = false;
  uint32_t timeoutSeconds = 0;
  bool operator==(const Set&) const = default;
};

// A named counter (`counter NAME { }`): packets and bytes that rules naming it (`counter name "NAME"`) saw.
// Its values are the kernel's, never compared; a table rebuild starts them again from zero.
struct NamedCounter {
  std::string name;
  std::string comment;
  bool operator==(const NamedCounter&) const = default;
};

// A named verdict map: each key to `jump <chain>`.
struct Map {
  std::string name;
  KeyType key;
  std::vector<std::pair<Key, std::string>> verdicts;  // key -> chain, in the order they print
  std::string comment;
  bool operator==(const Map&) const = default;
};

// What a base chain is, hooks into and does by default: the values nftables has for the inet family.
enum class ChainType : uint8_t { kFilter, kNat, kRoute };
enum class Hook : uint8_t { kIngress, kPrerouting, kInput, kForward, kOutput, kPostrouting };
enum class ChainPolicy : uint8_t { kAccept, kDrop };
// The priorities nft names (a chain may sit at any value between: Priority{-150} is one too).
enum class Priority : int32_t { kDstNat = -100, kFilter = 0, kSrcNat = 100 };
const char* toString(ChainType t);                            // "filter"
const char* toString(Hook h);                                 // "forward"
const char* toString(ChainPolicy p);                          // "accept"
std::string toString(Priority p, ChainType type, Hook hook);  // "filter", "dstnat", "srcnat" or the number

struct BaseChain {
  ChainType type = ChainType::kFilter;
  Hook hook = Hook::kForward;
  Priority priority = Priority::kFilter;
  ChainPolicy policy = ChainPolicy::kAccept;
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
  std::vector<Set> sets;               // sorted by name
  std::vector<Map> maps;               // sorted by name; a map's name is never a set's
  std::vector<Chain> chains;           // base chains first, then by name
  std::vector<NamedCounter> counters;  // sorted by name
  bool operator==(const Table&) const = default;

  const Set* findSet(const std::string& name) const;
  const Map* findMap(const std::string& name) const;
  const Chain* findChain(const std::string& name) const;
  // A set or map element whose kind its key type does not admit, or an interval element in a set without
  // intervals: what, where. nullopt when every element fits. With a name, that set or map only.
  std::optional<std::string> check() const;
  std::optional<std::string> check(const std::string& name) const;
};

// `nft -f` text: what `nftpol render` prints and what `nft list table inet nftpol` prints back.
std::string toText(const Table& table);
std::string toText(const Rule& rule);

// The ranges `cidr` minus every one of `except` covers, sorted, as interval elements.
std::vector<Key> blockElements(const Cidr& cidr, const std::vector<Cidr>& except);
// The addresses of `family` that any of `cidrs` covers, as the fewest interval elements: overlapping and
// adjacent prefixes merge (the kernel refuses a range that starts where another ends), sorted.
std::vector<Key> unionElements(Family family, const std::vector<Cidr>& cidrs);

}  // namespace nftpol::nft
