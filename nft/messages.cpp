#include "messages.h"

#include <arpa/inet.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cstring>

#include "nftpol/overloaded.h"

namespace nftpol::nft {
namespace {

// nft's datatype ids (src/datatype.h), shifted and or-ed for concatenations as nft does (TYPE_BITS = 6).
constexpr uint32_t kTypeVerdictMapData = NFT_DATA_VERDICT;
constexpr uint32_t kTypeInteger = 4, kTypeIpv4 = 7, kTypeIpv6 = 8, kTypeInetProto = 12, kTypeInetService = 13;
constexpr uint32_t concatType(uint32_t a, uint32_t b, uint32_t c) {
  return (((a << 6) | b) << 6) | c;
}

std::string addressBytes(const IpAddress& ip) {
  int n = ip.family() == Family::kV4 ? 4 : 16;
  return std::string(reinterpret_cast<const char*>(ip.bytes().data()), n);
}

// Big-endian integer arithmetic on address bytes, for interval end markers (last + 1).
std::string increment(std::string bytes, bool& overflow) {
  for (int i = static_cast<int>(bytes.size()) - 1; i >= 0; --i) {
    auto b = static_cast<uint8_t>(bytes[i]);
    bytes[i] = static_cast<char>(b + 1);
    if (b != 0xff) {
      overflow = false;
      return bytes;
    }
  }
  overflow = true;
  return bytes;
}

std::string word(uint32_t hostValue) {
  return std::string(reinterpret_cast<const char*>(&hostValue), 4);
}

void addUserComment(nftnl_rule* r, const std::string& comment) {
  if (comment.empty()) return;
  nftnl_udata_buf* buf = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
  nftnl_udata_put_strz(buf, NFTNL_UDATA_RULE_COMMENT, comment.c_str());
  nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(buf), nftnl_udata_buf_len(buf));
  nftnl_udata_buf_free(buf);
}

nftnl_expr* expr(nftnl_rule* r, const char* name) {
  nftnl_expr* e = nftnl_expr_alloc(name);
  nftnl_rule_add_expr(r, e);
  return e;
}
void meta(nftnl_rule* r, uint32_t key, uint32_t dreg) {
  nftnl_expr* e = expr(r, "meta");
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
  nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
}
void cmp(nftnl_rule* r, uint32_t op, const void* data, uint32_t len) {
  nftnl_expr* e = expr(r, "cmp");
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
  nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
  nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
}
void payload(nftnl_rule* r, uint32_t base, uint32_t offset, uint32_t len, uint32_t dreg) {
  nftnl_expr* e = expr(r, "payload");
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
  nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
}
void lookup(nftnl_rule* r, const std::string& set, std::optional<uint32_t> dreg, bool negated = false) {
  nftnl_expr* e = expr(r, "lookup");
  nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
  nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set.c_str());
  // Always set: the kernel echoes it, so a dump compares equal.
  nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, negated ? NFT_LOOKUP_F_INV : 0);
  if (dreg) nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, *dreg);
}
// The implicit `meta nfproto ipv4|ipv6` that nft adds before an ip/ip6 payload in an inet table.
void nfproto(nftnl_rule* r, Family f) {
  meta(r, NFT_META_NFPROTO, NFT_REG_1);
  uint8_t v = f == Family::kV4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
  cmp(r, NFT_CMP_EQ, &v, 1);
}
void address(nftnl_rule* r, Family f, Field field, uint32_t dreg) {
  bool v4 = f == Family::kV4;
  uint32_t offset = v4 ? (field == Field::kSource ? 12 : 16) : (field == Field::kSource ? 8 : 24);
  payload(r, NFT_PAYLOAD_NETWORK_HEADER, offset, v4 ? 4 : 16, dreg);
}

// reg1 = (reg1 & mask) ^ xorValue, on 32 bits.
void bitwise(nftnl_rule* r, uint32_t mask, uint32_t xorValue) {
  nftnl_expr* b = expr(r, "bitwise");
  nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
  nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
  nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_LEN, 4);
  nftnl_expr_set(b, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
  nftnl_expr_set(b, NFTNL_EXPR_BITWISE_XOR, &xorValue, 4);
}
void immediate(nftnl_rule* r, uint32_t dreg, const std::string& bytes) {
  nftnl_expr* e = expr(r, "immediate");
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, dreg);
  nftnl_expr_set(e, NFTNL_EXPR_IMM_DATA, bytes.data(), static_cast<uint32_t>(bytes.size()));
}
// The register `words` 32-bit words after the start of reg 1, named as the kernel names it in a dump: a
// 128-bit register when the word starts one (an IPv6 address fills reg 1, so what follows it starts reg 2).
uint32_t registerAt(uint32_t words) {
  return words % 4 == 0 ? NFT_REG_1 + words / 4 : NFT_REG32_00 + words;
}
// ip daddr . meta l4proto . th dport into reg1 onwards: concatenations load into consecutive 32-bit
// registers.
void addressProtocolPort(nftnl_rule* r, Family f) {
  nfproto(r, f);
  address(r, f, Field::kDestination, NFT_REG_1);
  uint32_t next = f == Family::kV4 ? 1 : 4;
  meta(r, NFT_META_L4PROTO, registerAt(next));
  payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, registerAt(next + 1));
}
// fib daddr type local
void localDestination(nftnl_rule* r) {
  nftnl_expr* e = expr(r, "fib");
  nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
  nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
  nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
  uint32_t local = 2;  // RTN_LOCAL
  cmp(r, NFT_CMP_EQ, &local, 4);
}
// fib daddr type local meta l4proto . th dport into reg1 onwards.
void localProtocolPort(nftnl_rule* r) {
  localDestination(r);
  meta(r, NFT_META_L4PROTO, NFT_REG_1);
  payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, registerAt(1));
}

void addMatch(nftnl_rule* r, const Match& m) {
  std::visit(
      Overloaded{
          [&](const CtState& ct) {
            uint32_t mask = 0;
            for (ConnState state : ct.states)
              mask |= static_cast<uint32_t>(state);
            nftnl_expr* e = expr(r, "ct");
            nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATE);
            nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
            nftnl_expr* b = expr(r, "bitwise");
            uint32_t zero = 0;
            nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
            nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
            nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_LEN, 4);
            nftnl_expr_set(b, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
            nftnl_expr_set(b, NFTNL_EXPR_BITWISE_XOR, &zero, 4);
            cmp(r, NFT_CMP_NEQ, &zero, 4);
          },
          [&](const AddressInSet& a) {
            nfproto(r, a.family);
            address(r, a.family, a.field, NFT_REG_1);
            lookup(r, a.set, std::nullopt, a.negated);
          },
          [&](const PortIs& p) {
            meta(r, NFT_META_L4PROTO, NFT_REG_1);
            uint8_t proto = ipProtocolNumber(p.port.protocol);
            cmp(r, NFT_CMP_EQ, &proto, 1);
            if (p.port.allPorts()) return;
            payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
            uint16_t first = htons(p.port.first), last = htons(p.port.last);
            if (p.port.first == p.port.last) {
              cmp(r, NFT_CMP_EQ, &first, 2);
            } else {
              cmp(r, NFT_CMP_GTE, &first, 2);
              cmp(r, NFT_CMP_LTE, &last, 2);
            }
          },
          [&](const DestinationPortInSet& d) {
            addressProtocolPort(r, d.family);
            lookup(r, d.set, std::nullopt);
          },
          [&](const AddressIs& a) {
            nfproto(r, a.family);
            address(r, a.family, a.field, NFT_REG_1);
            std::string bytes = addressBytes(a.address);
            cmp(r, NFT_CMP_EQ, bytes.data(), static_cast<uint32_t>(bytes.size()));
          },
          [&](const MarkHas& mark) {
            if (mark.of == MarkHas::Of::kPacket) {
              meta(r, NFT_META_MARK, NFT_REG_1);
            } else {
              nftnl_expr* e = expr(r, "ct");
              nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_MARK);
              nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
            }
            bitwise(r, mark.bit, 0);
            cmp(r, NFT_CMP_EQ, &mark.bit, 4);
          },
          [&](const ToLocalAddress&) { localDestination(r); },
          [&](const AddressInPrefix& a) {
            Family f = a.prefix.family();
            nfproto(r, f);
            address(r, f, a.field, NFT_REG_1);
            std::string base = addressBytes(a.prefix.base());
            int bits = a.prefix.prefixLength();
            if (bits < a.prefix.base().bitLength()) {
              std::string mask(base.size(), '\0'), zero(base.size(), '\0');
              for (int i = 0; i < bits; ++i)
                mask[static_cast<size_t>(i / 8)] =
                    static_cast<char>(mask[static_cast<size_t>(i / 8)] | (0x80 >> (i % 8)));
              nftnl_expr* b = expr(r, "bitwise");
              nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
              nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
              nftnl_expr_set_u32(b, NFTNL_EXPR_BITWISE_LEN, static_cast<uint32_t>(base.size()));
              nftnl_expr_set(b, NFTNL_EXPR_BITWISE_MASK, mask.data(), static_cast<uint32_t>(mask.size()));
              nftnl_expr_set(b, NFTNL_EXPR_BITWISE_XOR, zero.data(), static_cast<uint32_t>(zero.size()));
            }
            cmp(r, a.negated ? NFT_CMP_NEQ : NFT_CMP_EQ, base.data(), static_cast<uint32_t>(base.size()));
          },
          [&](const FamilyIs& f) {
            meta(r, NFT_META_NFPROTO, NFT_REG_1);
            uint8_t v = f.family == Family::kV4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
            cmp(r, NFT_CMP_EQ, &v, 1);
          },
          [&](const LocalProtocolPortInSet& l) {
            localProtocolPort(r);
            lookup(r, l.set, std::nullopt);
          },
          [&](const Translated&) {
            nftnl_expr* e = expr(r, "ct");
            nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATUS);
            nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
            bitwise(r, IPS_DST_NAT, 0);
            uint32_t zero = 0;
            cmp(r, NFT_CMP_NEQ, &zero, 4);
          },
      },
      m);
}

void addVerdict(nftnl_rule* r, const Verdict& v) {
  nftnl_expr* e = expr(r, "immediate");
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  int code = v.kind == Verdict::Kind::kAccept   ? NF_ACCEPT
             : v.kind == Verdict::Kind::kDrop   ? NF_DROP
             : v.kind == Verdict::Kind::kReturn ? NFT_RETURN
             : v.kind == Verdict::Kind::kGoto   ? NFT_GOTO
                                                : NFT_JUMP;
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(code));
  if (v.kind == Verdict::Kind::kJump || v.kind == Verdict::Kind::kGoto)
    nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, v.chain.c_str());
}

void addStatement(nftnl_rule* r, const Statement& st) {
  std::visit(Overloaded{
                 [&](const SetMarkBit& mark) {
                   meta(r, NFT_META_MARK, NFT_REG_1);
                   bitwise(r, ~mark.bit, mark.bit);  // (mark & ~bit) ^ bit: the bit set, the others kept
                   nftnl_expr* e = expr(r, "meta");
                   nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
                   nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
                 },
                 [&](const UpdateAddressSet& u) {
                   nfproto(r, u.family);
                   address(r, u.family, u.field, NFT_REG_1);
                   nftnl_expr* e = expr(r, "dynset");
                   nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_SREG_KEY, NFT_REG_1);
                   nftnl_expr_set_u32(e, NFTNL_EXPR_DYNSET_OP, NFT_DYNSET_OP_UPDATE);
                   nftnl_expr_set_str(e, NFTNL_EXPR_DYNSET_SET_NAME, u.set.c_str());
                 },
                 [&](const TraceOn&) {
                   uint8_t one = 1;
                   immediate(r, NFT_REG_1, std::string(reinterpret_cast<const char*>(&one), 1));
                   nftnl_expr* e = expr(r, "meta");
                   nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_NFTRACE);
                   nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
                 },
                 [&](const LogToGroup& log) {
                   if (!log.counter.empty()) {
                     nftnl_expr* o = expr(r, "objref");
                     nftnl_expr_set_u32(o, NFTNL_EXPR_OBJREF_IMM_TYPE, NFT_OBJECT_COUNTER);
                     nftnl_expr_set_str(o, NFTNL_EXPR_OBJREF_IMM_NAME, log.counter.c_str());
                   }
                   nftnl_expr* l = expr(r, "limit");
                   nftnl_expr_set_u64(l, NFTNL_EXPR_LIMIT_RATE, log.ratePerSecond);
                   nftnl_expr_set_u64(l, NFTNL_EXPR_LIMIT_UNIT, 1);  // seconds
                   nftnl_expr_set_u32(l, NFTNL_EXPR_LIMIT_BURST, log.burst);
                   nftnl_expr_set_u32(l, NFTNL_EXPR_LIMIT_TYPE, NFT_LIMIT_PKTS);
                   nftnl_expr_set_u32(l, NFTNL_EXPR_LIMIT_FLAGS, 0);
                   nftnl_expr* e = expr(r, "log");
                   nftnl_expr_set_str(e, NFTNL_EXPR_LOG_PREFIX, log.prefix.c_str());
                   nftnl_expr_set_u16(e, NFTNL_EXPR_LOG_GROUP, log.group);
                   nftnl_expr_set_u32(e, NFTNL_EXPR_LOG_SNAPLEN, log.snaplen);
                 },
             },
             st);
}

void addAction(nftnl_rule* r, const Action& action) {
  std::visit(Overloaded{
                 [&](const Verdict& v) { addVerdict(r, v); },
                 [&](const VerdictMapLookup& vm) {
                   switch (vm.key) {
                     case VerdictMapLookup::Key::kAddress:
                       nfproto(r, vm.family);
                       address(r, vm.family, vm.field, NFT_REG_1);
                       break;
                     case VerdictMapLookup::Key::kAddressProtocolPort:
                       addressProtocolPort(r, vm.family);
                       break;
                     case VerdictMapLookup::Key::kLocalProtocolPort:
                       localProtocolPort(r);
                       break;
                     case VerdictMapLookup::Key::kRandom: {
                       nftnl_expr* e = expr(r, "numgen");
                       nftnl_expr_set_u32(e, NFTNL_EXPR_NG_DREG, NFT_REG_1);
                       nftnl_expr_set_u32(e, NFTNL_EXPR_NG_MODULUS, vm.modulus);
                       nftnl_expr_set_u32(e, NFTNL_EXPR_NG_TYPE, NFT_NG_RANDOM);
                       nftnl_expr_set_u32(e, NFTNL_EXPR_NG_OFFSET, 0);
                       break;
                     }
                   }
                   lookup(r, vm.map, NFT_REG_VERDICT);
                 },
                 [&](const Dnat& d) {
                   std::string bytes = addressBytes(d.address);
                   immediate(r, NFT_REG_1, bytes);
                   uint16_t port = htons(d.port);
                   immediate(r, NFT_REG_2, std::string(reinterpret_cast<const char*>(&port), 2));
                   nftnl_expr* e = expr(r, "nat");
                   nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
                   nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY,
                                      d.address.family() == Family::kV4 ? NFPROTO_IPV4 : NFPROTO_IPV6);
                   nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
                   nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG_2);
                   // The kernel fills in the maxima and the address flag and echoes them; asking for them
                   // keeps a dump equal.
                   nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MAX, NFT_REG_1);
                   nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MAX, NFT_REG_2);
                   nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS,
                                      NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED);
                 },
                 [&](const Masquerade&) { expr(r, "masq"); },
                 [&](const Reject& rej) {
                   nftnl_expr* e = expr(r, "reject");
                   if (rej.tcpReset) {
                     nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_TCP_RST);
                     nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, 0);
                   } else if (rej.family) {
                     nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_ICMP_UNREACH);
                     nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE,
                                       *rej.family == Family::kV4 ? 3 /* port unreachable */
                                                                  : 4 /* ICMPv6 port unreachable */);
                   } else {
                     nftnl_expr_set_u32(e, NFTNL_EXPR_REJECT_TYPE, NFT_REJECT_ICMPX_UNREACH);
                     nftnl_expr_set_u8(e, NFTNL_EXPR_REJECT_CODE, NFT_REJECT_ICMPX_PORT_UNREACH);
                   }
                 },
                 [&](const Continue&) {},  // no verdict expression at all
             },
             action);
}

// One key as the kernel stores it: addresses and ports in network byte order, a protocol or a numgen value
// in a host-order register word each.
std::string encodeKey(const Key& key) {
  auto protocolPort = [](Protocol protocol, uint16_t port) {
    return word(ipProtocolNumber(protocol)) + word(htons(port));
  };
  return std::visit(Overloaded{
                        [](const IpAddress& a) { return addressBytes(a); },
                        [](const AddressRange& r) { return addressBytes(r.first); },  // check() refuses these
                        [&](const AddressProtocolPort& k) {
                          return addressBytes(k.address) + protocolPort(k.protocol, k.port);
                        },
                        [&](const ProtocolPort& k) { return protocolPort(k.protocol, k.port); },
                        [](const Slot& slot) { return word(slot.value); },
                    },
                    key);
}

std::vector<ElementTuple> encodeElements(const Set& s) {
  std::vector<ElementTuple> out;
  if (s.interval) {
    // The rbtree's encoding: a start element for each range and an end marker at last + 1; a range that does
    // not start at zero needs a leading end marker at zero.
    std::vector<std::pair<std::string, std::string>> ranges;
    for (const auto& e : s.elements) {
      if (const auto* r = std::get_if<AddressRange>(&e))
        ranges.emplace_back(addressBytes(r->first), addressBytes(r->last));
      else
        ranges.emplace_back(encodeKey(e), encodeKey(e));
    }
    std::sort(ranges.begin(), ranges.end());
    if (!ranges.empty() && ranges.front().first != std::string(ranges.front().first.size(), '\0'))
      out.push_back({std::string(ranges.front().first.size(), '\0'), NFT_SET_ELEM_INTERVAL_END, ""});
    for (const auto& [first, last] : ranges) {
      out.push_back({first, 0, ""});
      bool overflow = false;
      std::string end = increment(last, overflow);
      if (!overflow) out.push_back({end, NFT_SET_ELEM_INTERVAL_END, ""});
    }
  } else {
    out.reserve(s.elements.size());
    for (const auto& e : s.elements)
      out.push_back({encodeKey(e), 0, ""});
  }
  // Address sets come in address order, which is their bytes' order: a 10k-member peer set is not sorted
  // again on every change of it.
  if (!std::is_sorted(out.begin(), out.end())) std::sort(out.begin(), out.end());
  return out;
}

std::vector<ElementTuple> encodeElements(const Map& m) {
  std::vector<ElementTuple> out;
  out.reserve(m.verdicts.size());
  for (const auto& [key, chain] : m.verdicts)
    out.push_back({encodeKey(key), 0, chain});
  if (!std::is_sorted(out.begin(), out.end())) std::sort(out.begin(), out.end());
  return out;
}

// The kernel's key type and length (nft's datatype ids) of a key type.
std::pair<uint32_t, uint32_t> keySpec(const KeyType& key) {
  bool v6 = key.family == Family::kV6;
  uint32_t address = v6 ? kTypeIpv6 : kTypeIpv4, length = v6 ? 16 : 4;
  switch (key.kind) {
    case KeyType::Kind::kAddress:
      return {address, length};
    case KeyType::Kind::kAddressProtocolPort:
      return {concatType(address, kTypeInetProto, kTypeInetService), length + 8};
    case KeyType::Kind::kProtocolPort:
      return {(kTypeInetProto << 6) | kTypeInetService, 8};
    case KeyType::Kind::kRandom:
      return {kTypeInteger, 4};
  }
  return {0, 0};
}

// A map keyed by `numgen random mod N`: the kernel only knows a 4-byte integer key, so nft lists it as
// `typeof numgen random mod N` only from the description it keeps in the set's user data. This writes that
// description as nft 1.0 does (the expression ids are nft's stable udata ABI: 23 numgen, 1 verdict).
void putRandomTypeof(nftnl_udata_buf* buf, uint32_t modulus) {
  constexpr uint32_t kExprNumgen = 23, kExprVerdict = 1, kNumgenType = 0, kNumgenModulus = 1,
                     kNumgenOffset = 2;
  nftnl_udata_put_u32(buf, NFTNL_UDATA_SET_KEYBYTEORDER, 1);  // host
  nftnl_udata_put_u32(buf, NFTNL_UDATA_SET_DATABYTEORDER, 0);
  nftnl_udata* key = nftnl_udata_nest_start(buf, NFTNL_UDATA_SET_KEY_TYPEOF);
  nftnl_udata_put_u32(buf, NFTNL_UDATA_SET_TYPEOF_EXPR, kExprNumgen);
  nftnl_udata* numgen = nftnl_udata_nest_start(buf, NFTNL_UDATA_SET_TYPEOF_DATA);
  nftnl_udata_put_u32(buf, kNumgenType, NFT_NG_RANDOM);
  nftnl_udata_put_u32(buf, kNumgenModulus, modulus);
  nftnl_udata_put_u32(buf, kNumgenOffset, 0);
  nftnl_udata_nest_end(buf, numgen);
  nftnl_udata_nest_end(buf, key);
  nftnl_udata* data = nftnl_udata_nest_start(buf, NFTNL_UDATA_SET_DATA_TYPEOF);
  nftnl_udata_put_u32(buf, NFTNL_UDATA_SET_TYPEOF_EXPR, kExprVerdict);
  nftnl_udata_nest_end(buf, nftnl_udata_nest_start(buf, NFTNL_UDATA_SET_TYPEOF_DATA));
  nftnl_udata_nest_end(buf, data);
  nftnl_udata_put_u32(buf, NFTNL_UDATA_SET_DATA_INTERVAL, 0);
}

}  // namespace

SetView setViewOf(const Set& s) {
  SetView v;
  v.flags = (s.interval ? NFT_SET_INTERVAL : 0) | (s.dynamic ? NFT_SET_TIMEOUT | NFT_SET_EVAL : 0);
  std::tie(v.keyType, v.keyLength) = keySpec(s.key);
  v.timeoutMs = s.dynamic ? uint64_t{s.timeoutSeconds} * 1000 : 0;
  if (!s.dynamic) v.elements = encodeElements(s);  // a dynamic set's elements are the data path's
  return v;
}

SetView setViewOf(const Map& m) {
  SetView v;
  v.flags = NFT_SET_MAP;
  std::tie(v.keyType, v.keyLength) = keySpec(m.key);
  v.elements = encodeElements(m);
  return v;
}

uint32_t hookNumber(Hook hook) {
  switch (hook) {
    case Hook::kIngress:
      return NF_INET_INGRESS;
    case Hook::kPrerouting:
      return NF_INET_PRE_ROUTING;
    case Hook::kInput:
      return NF_INET_LOCAL_IN;
    case Hook::kForward:
      return NF_INET_FORWARD;
    case Hook::kOutput:
      return NF_INET_LOCAL_OUT;
    case Hook::kPostrouting:
      return NF_INET_POST_ROUTING;
  }
  return NF_INET_FORWARD;
}

std::optional<Hook> hookOf(uint32_t number) {
  for (Hook h :
       {Hook::kIngress, Hook::kPrerouting, Hook::kInput, Hook::kForward, Hook::kOutput, Hook::kPostrouting})
    if (hookNumber(h) == number) return h;
  return std::nullopt;
}

std::optional<ChainType> chainTypeOf(std::string_view name) {
  for (ChainType t : {ChainType::kFilter, ChainType::kNat, ChainType::kRoute})
    if (name == toString(t)) return t;
  return std::nullopt;
}

TablePtr buildTable(const Table& table) {
  TablePtr t(nftnl_table_alloc());
  nftnl_table_set_u32(t.get(), NFTNL_TABLE_FAMILY, kFamily);
  nftnl_table_set_str(t.get(), NFTNL_TABLE_NAME, table.name.c_str());
  return t;
}

ChainPtr buildChain(const Table& table, const Chain& chain) {
  ChainPtr c(nftnl_chain_alloc());
  nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_FAMILY, kFamily);
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TABLE, table.name.c_str());
  nftnl_chain_set_str(c.get(), NFTNL_CHAIN_NAME, chain.name.c_str());
  if (chain.base) {
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, hookNumber(chain.base->hook));
    nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, static_cast<int32_t>(chain.base->priority));
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY,
                        chain.base->policy == ChainPolicy::kDrop ? NF_DROP : NF_ACCEPT);
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, toString(chain.base->type));
  }
  if (!chain.comment.empty()) {
    nftnl_udata_buf* buf = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
    nftnl_udata_put_strz(buf, NFTNL_UDATA_CHAIN_COMMENT, chain.comment.c_str());
    nftnl_chain_set_data(c.get(), NFTNL_CHAIN_USERDATA, nftnl_udata_buf_data(buf), nftnl_udata_buf_len(buf));
    nftnl_udata_buf_free(buf);
  }
  return c;
}

RulePtr buildRule(const Table& table, const std::string& chain, const Rule& rule) {
  RulePtr r(nftnl_rule_alloc());
  nftnl_rule_set_u32(r.get(), NFTNL_RULE_FAMILY, kFamily);
  nftnl_rule_set_str(r.get(), NFTNL_RULE_TABLE, table.name.c_str());
  nftnl_rule_set_str(r.get(), NFTNL_RULE_CHAIN, chain.c_str());
  for (const auto& m : rule.matches)
    addMatch(r.get(), m);
  for (const auto& st : rule.statements)
    addStatement(r.get(), st);
  addAction(r.get(), rule.action);
  addUserComment(r.get(), rule.comment);
  return r;
}

namespace {
SetPtr setObject(const Table& table, const std::string& name, const SetView& v, uint32_t setId) {
  SetPtr s(nftnl_set_alloc());
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, kFamily);
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.name.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, name.c_str());
  nftnl_set_set_u32(s.get(), NFTNL_SET_ID, setId);
  nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, v.flags);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, v.keyType);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, v.keyLength);
  return s;
}
void putUserData(nftnl_set* s, nftnl_udata_buf* buf) {
  if (nftnl_udata_buf_len(buf) > 0)
    nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(buf), nftnl_udata_buf_len(buf));
  nftnl_udata_buf_free(buf);
}
}  // namespace

SetPtr buildSet(const Table& table, const Set& set, uint32_t setId) {
  SetView v = setViewOf(set);
  SetPtr s = setObject(table, set.name, v, setId);
  if (set.dynamic) {
    nftnl_set_set_u64(s.get(), NFTNL_SET_TIMEOUT, v.timeoutMs);
    nftnl_set_set_u32(s.get(), NFTNL_SET_DESC_SIZE, 65535);  // nft's default for a set the data path fills
  }
  nftnl_udata_buf* buf = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
  if (set.interval) nftnl_udata_put_u32(buf, NFTNL_UDATA_SET_KEYBYTEORDER, 1);  // as nft writes it
  if (!set.comment.empty()) nftnl_udata_put_strz(buf, NFTNL_UDATA_SET_COMMENT, set.comment.c_str());
  putUserData(s.get(), buf);
  return s;
}

SetPtr buildSet(const Table& table, const Map& map, uint32_t setId) {
  SetPtr s = setObject(table, map.name, setViewOf(map), setId);
  nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, kTypeVerdictMapData);
  nftnl_udata_buf* buf = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
  if (map.key.kind == KeyType::Kind::kRandom) putRandomTypeof(buf, map.key.modulus);
  if (!map.comment.empty()) nftnl_udata_put_strz(buf, NFTNL_UDATA_SET_COMMENT, map.comment.c_str());
  putUserData(s.get(), buf);
  return s;
}

SetPtr buildElements(const Table& table, const std::string& set, const std::vector<ElementTuple>& elements) {
  SetPtr s(nftnl_set_alloc());
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, kFamily);
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.name.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.c_str());
  for (const auto& e : elements) {
    nftnl_set_elem* el = nftnl_set_elem_alloc();
    nftnl_set_elem_set(el, NFTNL_SET_ELEM_KEY, e.key.data(), static_cast<uint32_t>(e.key.size()));
    if (e.flags) nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_FLAGS, e.flags);
    if (!e.chain.empty()) {
      nftnl_set_elem_set_u32(el, NFTNL_SET_ELEM_VERDICT, static_cast<uint32_t>(NFT_JUMP));
      nftnl_set_elem_set_str(el, NFTNL_SET_ELEM_CHAIN, e.chain.c_str());
    }
    nftnl_set_elem_add(s.get(), el);
  }
  return s;
}

ObjPtr buildCounter(const Table& table, const std::string& name, const std::string& comment) {
  ObjPtr o(nftnl_obj_alloc());
  nftnl_obj_set_u32(o.get(), NFTNL_OBJ_FAMILY, kFamily);
  nftnl_obj_set_str(o.get(), NFTNL_OBJ_TABLE, table.name.c_str());
  nftnl_obj_set_str(o.get(), NFTNL_OBJ_NAME, name.c_str());
  nftnl_obj_set_u32(o.get(), NFTNL_OBJ_TYPE, NFT_OBJECT_COUNTER);
  if (!comment.empty()) {
    nftnl_udata_buf* buf = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
    nftnl_udata_put_strz(buf, 0 /* NFTNL_UDATA_OBJ_COMMENT */, comment.c_str());
    nftnl_obj_set_data(o.get(), NFTNL_OBJ_USERDATA, nftnl_udata_buf_data(buf), nftnl_udata_buf_len(buf));
    nftnl_udata_buf_free(buf);
  }
  return o;
}

std::string ruleSignature(nftnl_rule* rule) {
  std::string out;
  nftnl_expr_iter* it = nftnl_expr_iter_create(rule);
  char buf[1024];
  for (nftnl_expr* e = nftnl_expr_iter_next(it); e; e = nftnl_expr_iter_next(it)) {
    nftnl_expr_snprintf(buf, sizeof buf, e, NFTNL_OUTPUT_DEFAULT, 0);
    out += std::string("[") + nftnl_expr_get_str(e, NFTNL_EXPR_NAME) + " " + buf + "]";
  }
  nftnl_expr_iter_destroy(it);
  uint32_t len = 0;
  if (nftnl_rule_is_set(rule, NFTNL_RULE_USERDATA)) {
    const void* data = nftnl_rule_get_data(rule, NFTNL_RULE_USERDATA, &len);
    out += "{" + std::string(static_cast<const char*>(data), len) + "}";
  }
  return out;
}

}  // namespace nftpol::nft
