#include "nftpol/nft/ruleset.h"

#include <algorithm>
#include <cstdio>

#include "nftpol/overloaded.h"

namespace nftpol::nft {
namespace {

using U128 = unsigned __int128;

U128 toInt(const IpAddress& ip) {
  U128 v = 0;
  int n = ip.family() == Family::kV4 ? 4 : 16;
  for (int i = 0; i < n; ++i)
    v = (v << 8) | ip.bytes()[i];
  return v;
}

IpAddress fromInt(Family f, U128 v) {
  std::array<uint8_t, 16> bytes{};
  int n = f == Family::kV4 ? 4 : 16;
  for (int i = n - 1; i >= 0; --i) {
    bytes[i] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
  return IpAddress::fromBytes(f, bytes);
}

const char* familyKeyword(Family f) {
  return f == Family::kV4 ? "ip" : "ip6";
}
const char* fieldKeyword(Field f) {
  return f == Field::kSource ? "saddr" : "daddr";
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s)
    out += (c == '"' || c == '\\') ? '\'' : c;  // nft strings have no escapes
  return out + "\"";
}

std::string elementsText(const std::vector<std::string>& items) {
  if (items.size() <= 4) {
    std::string out = "{ ";
    for (size_t i = 0; i < items.size(); ++i)
      out += (i ? ", " : "") + items[i];
    return out + " }";
  }
  std::string out = "{ ";
  for (size_t i = 0; i < items.size(); ++i)
    out += (i ? ",\n\t\t\t     " : "") + items[i];
  return out + " }";
}

std::string matchText(const Match& m) {
  return std::visit(Overloaded{
                        [](const CtState& ct) {
                          std::string out = "ct state ";
                          for (size_t i = 0; i < ct.states.size(); ++i)
                            out += std::string(i ? "," : "") + toString(ct.states[i]);
                          return out;
                        },
                        [](const AddressInSet& a) {
                          return std::string(familyKeyword(a.family)) + " " + fieldKeyword(a.field) +
                                 (a.negated ? " != @" : " @") + a.set;
                        },
                        [](const PortIs& p) {
                          const PortRange& only = p.port;
                          if (only.allPorts())
                            return "meta l4proto " + std::string(nftKeyword(only.protocol));
                          std::string out = std::string(nftKeyword(only.protocol)) + " dport " +
                                            std::to_string(only.first);  // as nft prints it
                          if (only.last != only.first) out += "-" + std::to_string(only.last);
                          return out;
                        },
                        [](const DestinationPortInSet& d) {
                          return std::string(familyKeyword(d.family)) + " daddr . meta l4proto . th dport @" +
                                 d.set;
                        },
                        [](const AddressIs& a) {
                          return std::string(familyKeyword(a.family)) + " " + fieldKeyword(a.field) + " " +
                                 a.address.toString();
                        },
                        [](const MarkHas& mark) {
                          return std::string(mark.of == MarkHas::Of::kPacket ? "meta" : "ct") + " mark & " +
                                 hex32(mark.bit) + " == " + hex32(mark.bit);
                        },
                        [](const ToLocalAddress&) { return std::string("fib daddr type local"); },
                        [](const FamilyIs& f) {
                          return std::string("meta nfproto ") + (f.family == Family::kV4 ? "ipv4" : "ipv6");
                        },
                        [](const LocalProtocolPortInSet& l) {
                          return "fib daddr type local meta l4proto . th dport @" + l.set;
                        },
                        [](const AddressInPrefix& a) {
                          return std::string(familyKeyword(a.prefix.family())) + " " + fieldKeyword(a.field) +
                                 (a.negated ? " != " : " ") + a.prefix.toString();
                        },
                        [](const Translated&) { return std::string("ct status dnat"); },
                    },
                    m);
}

std::string statementText(const Statement& st) {
  return std::visit(Overloaded{
                        [](const SetMarkBit& mark) { return "meta mark set meta mark | " + hex32(mark.bit); },
                        [](const UpdateAddressSet& u) {
                          return "update @" + u.set + " { " + familyKeyword(u.family) + " " +
                                 fieldKeyword(u.field) + " }";
                        },
                        [](const TraceOn&) { return std::string("meta nftrace set 1"); },
                        [](const LogToGroup& log) {
                          // nft leaves out the default burst of 5
                          return (log.counter.empty() ? "" : "counter name " + quote(log.counter) + " ") +
                                 "limit rate " + std::to_string(log.ratePerSecond) + "/second" +
                                 (log.burst == 5 ? "" : " burst " + std::to_string(log.burst) + " packets") +
                                 " log prefix \"" + log.prefix + "\" group " + std::to_string(log.group) +
                                 " snaplen " + std::to_string(log.snaplen);
                        },
                    },
                    st);
}

std::string actionText(const Action& action) {
  return std::visit(Overloaded{
                        [](const Verdict& v) -> std::string {
                          switch (v.kind) {
                            case Verdict::Kind::kAccept:
                              return "accept";
                            case Verdict::Kind::kDrop:
                              return "drop";
                            case Verdict::Kind::kReturn:
                              return "return";
                            case Verdict::Kind::kJump:
                              return "jump " + v.chain;
                            case Verdict::Kind::kGoto:
                              return "goto " + v.chain;
                          }
                          return "";
                        },
                        [](const VerdictMapLookup& vm) -> std::string {
                          switch (vm.key) {
                            case VerdictMapLookup::Key::kAddress:
                              return std::string(familyKeyword(vm.family)) + " " + fieldKeyword(vm.field) +
                                     " vmap @" + vm.map;
                            case VerdictMapLookup::Key::kAddressProtocolPort:
                              return std::string(familyKeyword(vm.family)) +
                                     " daddr . meta l4proto . th dport vmap @" + vm.map;
                            case VerdictMapLookup::Key::kLocalProtocolPort:
                              return "fib daddr type local meta l4proto . th dport vmap @" + vm.map;
                            case VerdictMapLookup::Key::kRandom:
                              return "numgen random mod " + std::to_string(vm.modulus) + " vmap @" + vm.map;
                          }
                          return "";
                        },
                        [](const Dnat& d) {
                          bool v4 = d.address.family() == Family::kV4;
                          std::string address = v4 ? d.address.toString() : "[" + d.address.toString() + "]";
                          return std::string("dnat ") + (v4 ? "ip" : "ip6") + " to " + address + ":" +
                                 std::to_string(d.port);
                        },
                        [](const Masquerade&) { return std::string("masquerade"); },
                        [](const Reject& r) {
                          if (r.tcpReset) return std::string("reject with tcp reset");
                          if (!r.family) return std::string("reject");
                          return std::string(*r.family == Family::kV4
                                                 ? "reject with icmp port-unreachable"
                                                 : "reject with icmpv6 port-unreachable");
                        },
                        [](const Continue&) { return std::string(); },
                    },
                    action);
}

// nft's time format: 3h, 1m30s, 1d.
std::string durationText(uint32_t seconds) {
  std::string out;
  for (auto [unit, size] : {std::pair{"d", 86400u}, {"h", 3600u}, {"m", 60u}, {"s", 1u}})
    if (seconds >= size) {
      out += std::to_string(seconds / size) + unit;
      seconds %= size;
    }
  return out.empty() ? "0s" : out;
}

}  // namespace

const char* toString(ConnState s) {
  switch (s) {
    case ConnState::kInvalid:
      return "invalid";
    case ConnState::kEstablished:
      return "established";
    case ConnState::kRelated:
      return "related";
    case ConnState::kNew:
      return "new";
  }
  return "?";
}

const char* toString(ChainType t) {
  switch (t) {
    case ChainType::kFilter:
      return "filter";
    case ChainType::kNat:
      return "nat";
    case ChainType::kRoute:
      return "route";
  }
  return "?";
}

const char* toString(Hook h) {
  switch (h) {
    case Hook::kIngress:
      return "ingress";
    case Hook::kPrerouting:
      return "prerouting";
    case Hook::kInput:
      return "input";
    case Hook::kForward:
      return "forward";
    case Hook::kOutput:
      return "output";
    case Hook::kPostrouting:
      return "postrouting";
  }
  return "?";
}

const char* toString(ChainPolicy p) {
  return p == ChainPolicy::kDrop ? "drop" : "accept";
}

// nft's names for the standard priorities, where nft uses them for that type and hook.
std::string toString(Priority p, ChainType type, Hook hook) {
  if (p == Priority::kFilter && type == ChainType::kFilter) return "filter";
  if (p == Priority::kDstNat && hook == Hook::kPrerouting) return "dstnat";
  if (p == Priority::kSrcNat && hook == Hook::kPostrouting) return "srcnat";
  return std::to_string(static_cast<int32_t>(p));
}

const char* nftKeyword(Protocol p) {
  switch (p) {
    case Protocol::kTCP:
      return "tcp";
    case Protocol::kUDP:
      return "udp";
    case Protocol::kSCTP:
      return "sctp";
  }
  return "?";
}

uint8_t ipProtocolNumber(Protocol p) {
  switch (p) {
    case Protocol::kTCP:
      return 6;
    case Protocol::kUDP:
      return 17;
    case Protocol::kSCTP:
      return 132;
  }
  return 0;
}

std::optional<Protocol> protocolFromNumber(uint8_t number) {
  for (Protocol p : {Protocol::kTCP, Protocol::kUDP, Protocol::kSCTP})
    if (ipProtocolNumber(p) == number) return p;
  return std::nullopt;
}

std::optional<Protocol> protocolFromKeyword(std::string_view keyword) {
  for (Protocol p : {Protocol::kTCP, Protocol::kUDP, Protocol::kSCTP})
    if (keyword == nftKeyword(p)) return p;
  return std::nullopt;
}

namespace {
// An address range as nft prints it: a prefix when it is exactly one, else "first-last".
std::string rangeText(const IpAddress& first, const IpAddress& last) {
  if (first == last) return first.toString();
  U128 lo = toInt(first), hi = toInt(last);
  U128 size = hi - lo + 1;
  int bits = first.bitLength();
  // An exact prefix: the size is a power of two (or the whole space) and the start is aligned to it.
  bool whole = size == 0 || (bits == 32 && size == (U128(1) << 32));
  if (whole && lo == 0) return first.toString() + "/0";
  if (size != 0 && (size & (size - 1)) == 0 && (lo & (size - 1)) == 0) {
    int hostBits = 0;
    while ((U128(1) << hostBits) < size)
      ++hostBits;
    return first.toString() + "/" + std::to_string(bits - hostBits);
  }
  return first.toString() + "-" + last.toString();
}
}  // namespace

std::string toString(const Key& key) {
  return std::visit(Overloaded{
                        [](const IpAddress& a) { return a.toString(); },
                        [](const AddressRange& r) { return rangeText(r.first, r.last); },
                        [](const AddressProtocolPort& k) {
                          return k.address.toString() + " . " + nftKeyword(k.protocol) + " . " +
                                 std::to_string(k.port);
                        },
                        [](const ProtocolPort& k) {
                          return std::string(nftKeyword(k.protocol)) + " . " + std::to_string(k.port);
                        },
                        [](const Slot& slot) { return std::to_string(slot.value); },
                    },
                    key);
}

std::string toString(const KeyType& type) {
  const char* address = type.family == Family::kV4 ? "ipv4_addr" : "ipv6_addr";
  switch (type.kind) {
    case KeyType::Kind::kAddress:
      return std::string("type ") + address;
    case KeyType::Kind::kAddressProtocolPort:
      return std::string("type ") + address + " . inet_proto . inet_service";
    case KeyType::Kind::kProtocolPort:
      return "type inet_proto . inet_service";
    case KeyType::Kind::kRandom:
      return "typeof numgen random mod " + std::to_string(type.modulus);
  }
  return "";
}

bool KeyType::admits(const Key& key) const {
  return std::visit(Overloaded{
                        [&](const IpAddress& a) { return kind == Kind::kAddress && a.family() == family; },
                        [&](const AddressRange& r) {
                          return kind == Kind::kAddress && r.first.family() == family &&
                                 r.last.family() == family && !(r.last < r.first);
                        },
                        [&](const AddressProtocolPort& k) {
                          return kind == Kind::kAddressProtocolPort && k.address.family() == family;
                        },
                        [&](const ProtocolPort&) { return kind == Kind::kProtocolPort; },
                        [&](const Slot& slot) { return kind == Kind::kRandom && slot.value < modulus; },
                    },
                    key);
}

namespace {
std::pair<U128, U128> rangeOf(const Cidr& c) {
  U128 lo = toInt(c.base());
  int hostBits = c.base().bitLength() - c.prefixLength();
  U128 span = hostBits >= 128 ? ~U128(0) : ((U128(1) << hostBits) - 1);
  return {lo, lo + span};
}
}  // namespace

std::vector<Key> unionElements(Family family, const std::vector<Cidr>& cidrs) {
  std::vector<std::pair<U128, U128>> ranges;
  for (const auto& c : cidrs)
    if (c.family() == family) ranges.push_back(rangeOf(c));
  std::sort(ranges.begin(), ranges.end());
  std::vector<Key> out;
  for (size_t i = 0; i < ranges.size();) {
    auto [lo, hi] = ranges[i];
    // hi + 1 cannot wrap unless hi is the last address, which every later range ends at or before
    for (++i; i < ranges.size() && (hi == ~U128(0) || ranges[i].first <= hi + 1); ++i)
      hi = std::max(hi, ranges[i].second);
    out.emplace_back(AddressRange{fromInt(family, lo), fromInt(family, hi)});
  }
  return out;
}

std::vector<Key> blockElements(const Cidr& cidr, const std::vector<Cidr>& except) {
  Family f = cidr.family();
  std::vector<std::pair<U128, U128>> ranges = {rangeOf(cidr)};
  for (const auto& e : except) {
    auto [elo, ehi] = rangeOf(e);
    std::vector<std::pair<U128, U128>> next;
    for (auto [lo, hi] : ranges) {
      if (ehi < lo || elo > hi) {
        next.emplace_back(lo, hi);
        continue;
      }
      if (elo > lo) next.emplace_back(lo, elo - 1);
      if (ehi < hi) next.emplace_back(ehi + 1, hi);
    }
    ranges = std::move(next);
  }
  std::vector<Key> out;
  out.reserve(ranges.size());
  for (auto [lo, hi] : ranges)
    out.emplace_back(AddressRange{fromInt(f, lo), fromInt(f, hi)});
  return out;
}

// Tables keep sets sorted by name, and chains sorted by name after the base chains, so a lookup is a binary
// search (a table of 10k chains is searched for every chain a reconcile adds); a table built out of order
// still finds everything, by the linear search after it.
const Set* Table::findSet(const std::string& n) const {
  auto it = std::lower_bound(sets.begin(), sets.end(), n,
                             [](const Set& s, const std::string& v) { return s.name < v; });
  if (it != sets.end() && it->name == n) return &*it;
  for (const auto& s : sets)
    if (s.name == n) return &s;
  return nullptr;
}

const Map* Table::findMap(const std::string& n) const {
  auto it = std::lower_bound(maps.begin(), maps.end(), n,
                             [](const Map& m, const std::string& v) { return m.name < v; });
  if (it != maps.end() && it->name == n) return &*it;
  for (const auto& m : maps)
    if (m.name == n) return &m;
  return nullptr;
}

namespace {
std::optional<std::string> checkSet(const Set& s) {
  for (const auto& e : s.elements) {
    bool range = std::holds_alternative<AddressRange>(e);
    if (!s.key.admits(e) || (range && !s.interval))
      return "set " + s.name + " (" + toString(s.key) + (s.interval ? ", interval" : "") + ") cannot hold " +
             toString(e);
  }
  return std::nullopt;
}
std::optional<std::string> checkMap(const Map& m) {
  for (const auto& [key, chain] : m.verdicts)
    if (!m.key.admits(key) || std::holds_alternative<AddressRange>(key))
      return "map " + m.name + " (" + toString(m.key) + ") cannot map " + toString(key);
  return std::nullopt;
}
}  // namespace

std::optional<std::string> Table::check() const {
  for (const auto& s : sets)
    if (auto problem = checkSet(s)) return problem;
  for (const auto& m : maps)
    if (auto problem = checkMap(m)) return problem;
  return std::nullopt;
}

std::optional<std::string> Table::check(const std::string& name) const {
  if (const Set* s = findSet(name)) return checkSet(*s);
  if (const Map* m = findMap(name)) return checkMap(*m);
  return std::nullopt;
}

const Chain* Table::findChain(const std::string& n) const {
  auto regular = std::find_if(chains.begin(), chains.end(), [](const Chain& c) { return !c.base; });
  for (auto it = chains.begin(); it != regular; ++it)
    if (it->name == n) return &*it;
  auto it = std::lower_bound(regular, chains.end(), n,
                             [](const Chain& c, const std::string& v) { return c.name < v; });
  if (it != chains.end() && it->name == n) return &*it;
  for (const auto& c : chains)
    if (c.name == n) return &c;
  return nullptr;
}

std::string toText(const Rule& rule) {
  std::string out;
  for (const auto& m : rule.matches)
    out += matchText(m) + " ";
  for (const auto& st : rule.statements)
    out += statementText(st) + " ";
  out += actionText(rule.action);
  if (!out.empty() && out.back() == ' ') out.pop_back();  // a rule without a verdict
  if (!rule.comment.empty()) out += " comment " + quote(rule.comment);
  return out;
}

std::string toText(const Table& table) {
  std::string out = "table " + table.family + " " + table.name + " {\n";
  bool first = true;
  // Named objects first, as nft lists them; a listing shows the kernel's values, a table we print zeros.
  for (const auto& c : table.counters) {
    out += first ? "" : "\n";
    first = false;
    out += "\tcounter " + c.name + " {\n";
    if (!c.comment.empty()) out += "\t\tcomment " + quote(c.comment) + "\n";
    out += "\t\tpackets 0 bytes 0\n\t}\n";
  }
  // Sets and maps in one name order, as nft lists them.
  auto set = table.sets.begin();
  auto map = table.maps.begin();
  while (set != table.sets.end() || map != table.maps.end()) {
    out += first ? "" : "\n";
    first = false;
    bool isSet = map == table.maps.end() || (set != table.sets.end() && set->name < map->name);
    const std::string& name = isSet ? set->name : map->name;
    const KeyType& key = isSet ? set->key : map->key;
    const std::string& comment = isSet ? set->comment : map->comment;
    out += std::string("\t") + (isSet ? "set " : "map ") + name + " {\n";
    out += "\t\t" + toString(key) + (isSet ? "" : " : verdict") + "\n";
    std::vector<std::string> items;
    if (isSet) {
      if (set->dynamic)
        out += "\t\tsize 65535\n\t\tflags dynamic,timeout\n\t\ttimeout " + durationText(set->timeoutSeconds) +
               "\n";
      if (set->interval) out += "\t\tflags interval\n";
      for (const auto& e : set->elements)
        items.push_back(toString(e));
      ++set;
    } else {
      for (const auto& [k, chain] : map->verdicts)
        items.push_back(toString(k) + " : jump " + chain);
      ++map;
    }
    if (!comment.empty()) out += "\t\tcomment " + quote(comment) + "\n";
    if (!items.empty()) out += "\t\telements = " + elementsText(items) + "\n";
    out += "\t}\n";
  }
  for (const auto& c : table.chains) {
    out += first ? "" : "\n";
    first = false;
    out += "\tchain " + c.name + " {\n";
    if (!c.comment.empty()) out += "\t\tcomment " + quote(c.comment) + "\n";
    if (c.base)
      out += std::string("\t\ttype ") + toString(c.base->type) + " hook " + toString(c.base->hook) +
             " priority " + toString(c.base->priority, c.base->type, c.base->hook) + "; policy " +
             toString(c.base->policy) + ";\n";
    for (const auto& r : c.rules)
      out += "\t\t" + toText(r) + "\n";
    out += "\t}\n";
  }
  return out + "}\n";
}

}  // namespace nftpol::nft
