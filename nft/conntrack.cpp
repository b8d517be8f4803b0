#include "nftpol/nft/conntrack.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "nftpol/netlink.h"
#include "nftpol/nft/tracer.h"

namespace nftpol::nft {
namespace {

// One entry of a ctnetlink dump, parsed by libnetfilter_conntrack.
int collect(const nlmsghdr* nlh, void* data) {
  nf_conntrack* ct = nfct_new();
  if (!ct) return MNL_CB_ERROR;
  if (nfct_nlmsg_parse(nlh, ct) < 0) {
    nfct_destroy(ct);
    return MNL_CB_OK;  // not an entry we can read: nothing of ours to judge
  }
  static_cast<std::vector<nf_conntrack*>*>(data)->push_back(ct);
  return MNL_CB_OK;
}

nlmsghdr* ctnetlinkHeader(char* buffer, uint16_t type, uint8_t family) {
  nlmsghdr* nlh = mnl_nlmsg_put_header(buffer);
  nlh->nlmsg_type = static_cast<uint16_t>((NFNL_SUBSYS_CTNETLINK << 8) | type);
  auto* header = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  header->nfgen_family = family;
  header->version = NFNETLINK_V0;
  header->res_id = 0;
  return nlh;
}

// The connection as the policy chains see it: in the forward hook, after service DNAT (nat-prerouting) and
// before any masquerade (postrouting). Its source is the original source; its destination is where the reply
// comes from, which is the backend for a connection through a service and the original destination otherwise.
std::optional<Packet> originalOf(const nf_conntrack* ct) {
  // NetworkPolicy speaks of TCP, UDP and SCTP only
  auto protocol = protocolFromNumber(nfct_get_attr_u8(ct, ATTR_ORIG_L4PROTO));
  if (!protocol) return std::nullopt;
  std::array<uint8_t, 16> src{}, dst{};
  Family family;
  if (nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO) == AF_INET) {
    family = Family::kV4;
    uint32_t s = nfct_get_attr_u32(ct, ATTR_ORIG_IPV4_SRC), d = nfct_get_attr_u32(ct, ATTR_REPL_IPV4_SRC);
    std::memcpy(src.data(), &s, 4);
    std::memcpy(dst.data(), &d, 4);
  } else {
    family = Family::kV6;
    std::memcpy(src.data(), nfct_get_attr(ct, ATTR_ORIG_IPV6_SRC), 16);
    std::memcpy(dst.data(), nfct_get_attr(ct, ATTR_REPL_IPV6_SRC), 16);
  }
  return Packet{IpAddress::fromBytes(family, src), IpAddress::fromBytes(family, dst), *protocol,
                ntohs(nfct_get_attr_u16(ct, ATTR_REPL_PORT_SRC))};
}

}  // namespace

namespace {

// Every entry of this network namespace's conntrack table, both families in one walk, freed with the dump. A
// dump that failed part-way keeps what it read, and says why.
struct Dump {
  std::vector<nf_conntrack*> entries;
  std::optional<Error> failure;
  explicit Dump(Netlink& nl) {
    std::array<char, 256> request{};
    nlmsghdr* nlh = ctnetlinkHeader(request.data(), IPCTNL_MSG_CT_GET, AF_UNSPEC);
    auto dumped = nl.dump(nlh, "conntrack: dump", collect, &entries, [this] { clear(); });
    if (dumped && dumped->errnum != ENOENT) failure = dumped;
  }
  ~Dump() { clear(); }
  Dump(const Dump&) = delete;
  Dump& operator=(const Dump&) = delete;
  void clear() {
    for (nf_conntrack* ct : entries)
      nfct_destroy(ct);
    entries.clear();
  }
};

// The original tuple of `entry` with its zone: what names the entry to the kernel for an update or a delete.
std::unique_ptr<nf_conntrack, decltype(&nfct_destroy)> tupleOf(const nf_conntrack* entry) {
  std::unique_ptr<nf_conntrack, decltype(&nfct_destroy)> tuple(nfct_new(), nfct_destroy);
  if (!tuple) return tuple;
  nfct_copy(tuple.get(), entry, NFCT_CP_ORIG);
  if (nfct_attr_is_set(entry, ATTR_ZONE))
    nfct_set_attr_u16(tuple.get(), ATTR_ZONE, nfct_get_attr_u16(entry, ATTR_ZONE));
  return tuple;
}

// The mark updates. libnetfilter_conntrack builds the tuple; CTA_MARK_MASK, which it cannot send, makes the
// kernel change just our bit: new = (old & ~mask) ^ value. nullopt when done or when the entry is gone
// meanwhile (nothing left to revoke).
std::optional<Error> writeMark(Netlink& nl, const nf_conntrack* entry, bool revoked) {
  auto tuple = tupleOf(entry);
  if (!tuple) return errnoError("conntrack: cannot mark a connection", ENOMEM);
  std::array<char, 1024> buffer{};
  // IPCTNL_MSG_CT_NEW without NLM_F_CREATE: an update.
  nlmsghdr* nlh =
      ctnetlinkHeader(buffer.data(), IPCTNL_MSG_CT_NEW, nfct_get_attr_u8(entry, ATTR_ORIG_L3PROTO));
  if (nfct_nlmsg_build(nlh, tuple.get()) < 0)
    return errnoError("conntrack: cannot mark a connection", EINVAL);
  mnl_attr_put_u32(nlh, CTA_MARK, htonl(revoked ? kRevokedConnectionMark : 0));
  mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(kRevokedConnectionMark));
  auto e = nl.request(nlh, "conntrack: cannot mark a connection");
  if (e && e->errnum == ENOENT) return std::nullopt;
  return e;
}

}  // namespace

Result<Netlink*> Conntrack::socket() {
  if (!nl_) {
    auto opened = Netlink::open(NETLINK_NETFILTER);
    if (!opened) return Error{"conntrack: " + opened.error().message, opened.error().errnum};
    nl_ = std::move(*opened);
  }
  return &*nl_;
}

Result<Revoked> Conntrack::revokeDenied(const Table& table) {
  auto nl = socket();
  if (!nl) return nl.error();
  Dump dump(**nl);
  std::optional<Error> failure = dump.failure;
  Revoked r;
  for (nf_conntrack* ct : dump.entries) {
    auto packet = originalOf(ct);
    if (!packet) continue;
    ++r.checked;
    bool denied = !trace(table, *packet).accepted;
    bool marked = (nfct_get_attr_u32(ct, ATTR_MARK) & kRevokedConnectionMark) != 0;
    if (denied == marked) continue;
    if (auto e = writeMark(**nl, ct, denied)) {
      if (!failure) failure = e;
    } else {
      ++(denied ? r.revoked : r.restored);
    }
  }
  if (failure) {
    nl_.reset();
    return *failure;
  }
  return r;
}

namespace {

// Both ends of both directions: a connection through a service has the pod as the reply's source only.
std::vector<IpAddress> endsOf(const nf_conntrack* ct) {
  std::vector<IpAddress> out;
  bool v4 = nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO) == AF_INET;
  for (auto [a4, a6] :
       {std::pair{ATTR_ORIG_IPV4_SRC, ATTR_ORIG_IPV6_SRC}, std::pair{ATTR_ORIG_IPV4_DST, ATTR_ORIG_IPV6_DST},
        std::pair{ATTR_REPL_IPV4_SRC, ATTR_REPL_IPV6_SRC},
        std::pair{ATTR_REPL_IPV4_DST, ATTR_REPL_IPV6_DST}}) {
    std::array<uint8_t, 16> bytes{};
    if (v4) {
      uint32_t a = nfct_get_attr_u32(ct, a4);
      std::memcpy(bytes.data(), &a, 4);
    } else {
      std::memcpy(bytes.data(), nfct_get_attr(ct, a6), 16);
    }
    out.push_back(IpAddress::fromBytes(v4 ? Family::kV4 : Family::kV6, bytes));
  }
  return out;
}

}  // namespace

Result<size_t> Conntrack::forgetConnections(const std::vector<IpAddress>& addresses) {
  if (addresses.empty()) return size_t{0};
  auto nl = socket();
  if (!nl) return nl.error();
  Dump dump(**nl);
  std::optional<Error> failure = dump.failure;
  size_t forgotten = 0;
  for (nf_conntrack* ct : dump.entries) {
    auto ends = endsOf(ct);
    if (std::none_of(ends.begin(), ends.end(), [&](const IpAddress& ip) {
          return std::find(addresses.begin(), addresses.end(), ip) != addresses.end();
        }))
      continue;
    std::array<char, 1024> buffer{};
    nlmsghdr* del =
        ctnetlinkHeader(buffer.data(), IPCTNL_MSG_CT_DELETE, nfct_get_attr_u8(ct, ATTR_ORIG_L3PROTO));
    auto tuple = tupleOf(ct);
    if (!tuple || nfct_nlmsg_build(del, tuple.get()) < 0) {
      if (!failure) failure = errnoError("conntrack: cannot delete a connection", EINVAL);
      continue;
    }
    if (auto e = (*nl)->request(del, "conntrack: cannot delete a connection"); e && e->errnum != ENOENT) {
      if (!failure) failure = e;
      continue;
    }
    ++forgotten;
  }
  if (failure) {
    nl_.reset();
    return *failure;
  }
  return forgotten;
}

}  // namespace nftpol::nft
