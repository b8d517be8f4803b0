#include "nftpol/nft/messages.h"

#include <arpa/inet.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>
#include <cstring>

namespace nftpol::nft {
namespace {

// nft's datatype ids (src/datatype.h), shifted and or-ed for concatenations as nft does (TYPE_BITS = 6).
constexpr uint32_t kTypeVerdictMapData = NFT_DATA_VERDICT;
constexpr uint32_t kTypeIpv4 = 7, kTypeIpv6 = 8, kTypeInetProto = 12, kTypeInetService = 13;
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

// An interval element ("a", "a/len" or "a-b") as its first and last address bytes.
std::pair<std::string, std::string> intervalOf(const std::string& element) {
  if (auto slash = element.find('/'); slash != std::string::npos) {
    auto c = Cidr::parse(element);
    std::string first = addressBytes(c->base()), last = first;
    int hostBits = c->base().bitLength() - c->prefixLength();
    for (int i = static_cast<int>(last.size()) - 1; i >= 0 && hostBits > 0; --i, hostBits -= 8)
      last[i] =
          static_cast<char>(static_cast<uint8_t>(last[i]) | (hostBits >= 8 ? 0xff : (1 << hostBits) - 1));
    return {first, last};
  }
  if (auto dash = element.find('-'); dash != std::string::npos)
    return {addressBytes(*IpAddress::parse(element.substr(0, dash))),
            addressBytes(*IpAddress::parse(element.substr(dash + 1)))};
  std::string a = addressBytes(*IpAddress::parse(element));
  return {a, a};
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
void lookup(nftnl_rule* r, const std::string& set, std::optional<uint32_t> dreg) {
  nftnl_expr* e = expr(r, "lookup");
  nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
  nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set.c_str());
  nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, 0);  // the kernel echoes it, so a dump compares equal
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

void addMatch(nftnl_rule* r, const Match& m) {
  if (const auto* ct = std::get_if<CtState>(&m)) {
    uint32_t mask = 0;
    for (const auto& s : ct->states)
      mask |= s == "invalid" ? 1u : s == "established" ? 2u : s == "related" ? 4u : s == "new" ? 8u : 0u;
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
  } else if (const auto* a = std::get_if<AddressInSet>(&m)) {
    nfproto(r, a->family);
    address(r, a->family, a->field, NFT_REG_1);
    lookup(r, a->set, std::nullopt);
  } else if (const auto* p = std::get_if<PortIs>(&m)) {
    meta(r, NFT_META_L4PROTO, NFT_REG_1);
    uint8_t proto = ipProtocolNumber(p->port.protocol);
    cmp(r, NFT_CMP_EQ, &proto, 1);
    if (p->port.allPorts()) return;
    payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG_1);
    uint16_t first = htons(p->port.first), last = htons(p->port.last);
    if (p->port.first == p->port.last) {
      cmp(r, NFT_CMP_EQ, &first, 2);
    } else {
      cmp(r, NFT_CMP_GTE, &first, 2);
      cmp(r, NFT_CMP_LTE, &last, 2);
    }
  } else {
    const auto& d = std::get<DestinationPortInSet>(m);
    nfproto(r, d.family);
    address(r, d.family, Field::kDestination, NFT_REG_1);
    // Concatenations load into consecutive 32-bit registers after the address.
    uint32_t next = NFT_REG32_00 + (d.family == Family::kV4 ? 1 : 4);
    meta(r, NFT_META_L4PROTO, next);
    payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, next + 1);
    lookup(r, d.set, std::nullopt);
  }
}

void addVerdict(nftnl_rule* r, const Verdict& v) {
  nftnl_expr* e = expr(r, "immediate");
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
  int code = v.kind == Verdict::Kind::kAccept   ? NF_ACCEPT
             : v.kind == Verdict::Kind::kDrop   ? NF_DROP
             : v.kind == Verdict::Kind::kReturn ? NFT_RETURN
                                                : NFT_JUMP;
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(code));
  if (v.kind == Verdict::Kind::kJump) nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, v.chain.c_str());
}

std::vector<ElementTuple> encodeElements(const Set& s) {
  std::vector<ElementTuple> out;
  if (s.isMap) {
    for (const auto& [key, chain] : s.verdicts)
      out.push_back({addressBytes(*IpAddress::parse(key)), 0, chain});
  } else if (s.interval) {
    // The rbtree's encoding: a start element for each range and an end marker at last + 1; a range that does
    // not start at zero needs a leading end marker at zero.
    std::vector<std::pair<std::string, std::string>> ranges;
    for (const auto& e : s.elements)
      ranges.push_back(intervalOf(e));
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
    for (const auto& e : s.elements) {
      auto dot = e.find(" . ");
      if (dot == std::string::npos) {
        out.push_back({addressBytes(*IpAddress::parse(e)), 0, ""});
        continue;
      }
      auto dot2 = e.find(" . ", dot + 3);
      std::string proto = e.substr(dot + 3, dot2 - dot - 3);
      uint32_t protoWord = ipProtocolNumber(*protocolFromKeyword(proto));
      uint32_t portWord = htons(static_cast<uint16_t>(std::stoi(e.substr(dot2 + 3))));
      out.push_back(
          {addressBytes(*IpAddress::parse(e.substr(0, dot))) + word(protoWord) + word(portWord), 0, ""});
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

SetView setViewOf(const Set& s) {
  SetView v;
  bool v6 = s.type.rfind("ipv6_addr", 0) == 0;
  bool concat = s.type.find(" . ") != std::string::npos;
  v.flags = (s.interval ? NFT_SET_INTERVAL : 0) | (s.isMap ? NFT_SET_MAP : 0);
  v.keyType = concat ? concatType(v6 ? kTypeIpv6 : kTypeIpv4, kTypeInetProto, kTypeInetService)
                     : (v6 ? kTypeIpv6 : kTypeIpv4);
  v.keyLength = (v6 ? 16 : 4) + (concat ? 8 : 0);
  v.elements = encodeElements(s);
  return v;
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
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_HOOKNUM, NF_INET_FORWARD);
    nftnl_chain_set_s32(c.get(), NFTNL_CHAIN_PRIO, chain.base->priority);
    nftnl_chain_set_u32(c.get(), NFTNL_CHAIN_POLICY, NF_ACCEPT);
    nftnl_chain_set_str(c.get(), NFTNL_CHAIN_TYPE, chain.base->type.c_str());
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
  if (const auto* v = std::get_if<Verdict>(&rule.action)) {
    addVerdict(r.get(), *v);
  } else {
    const auto& vm = std::get<VerdictMapLookup>(rule.action);
    nfproto(r.get(), vm.family);
    address(r.get(), vm.family, vm.field, NFT_REG_1);
    lookup(r.get(), vm.map, NFT_REG_VERDICT);
  }
  addUserComment(r.get(), rule.comment);
  return r;
}

SetPtr buildSet(const Table& table, const Set& set, uint32_t setId) {
  SetView v = setViewOf(set);
  SetPtr s(nftnl_set_alloc());
  nftnl_set_set_u32(s.get(), NFTNL_SET_FAMILY, kFamily);
  nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, table.name.c_str());
  nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.name.c_str());
  nftnl_set_set_u32(s.get(), NFTNL_SET_ID, setId);
  nftnl_set_set_u32(s.get(), NFTNL_SET_FLAGS, v.flags);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_TYPE, v.keyType);
  nftnl_set_set_u32(s.get(), NFTNL_SET_KEY_LEN, v.keyLength);
  if (set.isMap) nftnl_set_set_u32(s.get(), NFTNL_SET_DATA_TYPE, kTypeVerdictMapData);
  nftnl_udata_buf* buf = nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN);
  if (set.interval) nftnl_udata_put_u32(buf, NFTNL_UDATA_SET_KEYBYTEORDER, 1);  // as nft writes it
  if (!set.comment.empty()) nftnl_udata_put_strz(buf, NFTNL_UDATA_SET_COMMENT, set.comment.c_str());
  if (nftnl_udata_buf_len(buf) > 0)
    nftnl_set_set_data(s.get(), NFTNL_SET_USERDATA, nftnl_udata_buf_data(buf), nftnl_udata_buf_len(buf));
  nftnl_udata_buf_free(buf);
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
