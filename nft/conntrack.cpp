#include "nftpol/nft/conntrack.h"

#include <arpa/inet.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "nftpol/nft/tracer.h"

namespace nftpol::nft {
namespace {

int collect(enum nf_conntrack_msg_type, struct nf_conntrack* ct, void* data) {
  static_cast<std::vector<nf_conntrack*>*>(data)->push_back(nfct_clone(ct));
  return NFCT_CB_CONTINUE;
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

Result<Revoked> revokeDenied(const Table& table) {
  nfct_handle* h = nfct_open(CONNTRACK, 0);
  if (!h) return Error{"conntrack: cannot open ctnetlink: " + std::string(std::strerror(errno))};
  std::vector<nf_conntrack*> entries;
  nfct_callback_register(h, NFCT_T_ALL, collect, &entries);
  Revoked r;
  std::string failure;
  uint32_t family = AF_UNSPEC;  // both families in one walk of the (host-wide) conntrack table
  if (nfct_query(h, NFCT_Q_DUMP, &family) < 0 && errno != ENOENT)
    failure = "conntrack: dump failed: " + std::string(std::strerror(errno));
  nfct_callback_unregister(h);
  for (nf_conntrack* ct : entries) {
    if (auto packet = originalOf(ct)) {
      ++r.checked;
      if (!trace(table, *packet).accepted) {
        if (nfct_query(h, NFCT_Q_DESTROY, ct) == 0 || errno == ENOENT) ++r.deleted;
      }
    }
    nfct_destroy(ct);
  }
  nfct_close(h);
  if (!failure.empty()) return Error{failure};
  return r;
}

}  // namespace nftpol::nft
