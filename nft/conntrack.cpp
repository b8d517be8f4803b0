#include "nftpol/nft/conntrack.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
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

namespace {

// One ctnetlink session for the mark updates. libnetfilter_conntrack builds the tuple; CTA_MARK_MASK, which
// it cannot send, makes the kernel change just our bit: new = (old & ~mask) ^ value.
class MarkWriter {
 public:
  MarkWriter() : socket_(mnl_socket_open(NETLINK_NETFILTER)) {
    if (socket_ && mnl_socket_bind(socket_, 0, MNL_SOCKET_AUTOPID) < 0) {
      mnl_socket_close(socket_);
      socket_ = nullptr;
    }
  }
  ~MarkWriter() {
    if (socket_) mnl_socket_close(socket_);
  }
  MarkWriter(const MarkWriter&) = delete;
  MarkWriter& operator=(const MarkWriter&) = delete;

  bool open() const { return socket_ != nullptr; }

  // 0 when done or when the entry is gone meanwhile (nothing left to revoke), else an errno.
  int write(const nf_conntrack* entry, bool revoked) {
    std::unique_ptr<nf_conntrack, decltype(&nfct_destroy)> tuple(nfct_new(), nfct_destroy);
    if (!tuple) return ENOMEM;
    nfct_copy(tuple.get(), entry, NFCT_CP_ORIG);
    if (nfct_attr_is_set(entry, ATTR_ZONE))
      nfct_set_attr_u16(tuple.get(), ATTR_ZONE, nfct_get_attr_u16(entry, ATTR_ZONE));
    std::array<char, 1024> buffer{};
    nlmsghdr* nlh = mnl_nlmsg_put_header(buffer.data());
    nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;  // without NLM_F_CREATE: an update
    nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
    nlh->nlmsg_seq = ++sequence_;
    auto* header = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
    header->nfgen_family = nfct_get_attr_u8(entry, ATTR_ORIG_L3PROTO);
    header->version = NFNETLINK_V0;
    header->res_id = 0;
    if (nfct_nlmsg_build(nlh, tuple.get()) < 0) return errno ? errno : EINVAL;
    mnl_attr_put_u32(nlh, CTA_MARK, htonl(revoked ? kRevokedConnectionMark : 0));
    mnl_attr_put_u32(nlh, CTA_MARK_MASK, htonl(kRevokedConnectionMark));
    if (mnl_socket_sendto(socket_, nlh, nlh->nlmsg_len) < 0) return errno;
    ssize_t n = mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
    if (n < 0) return errno;
    if (mnl_cb_run(buffer.data(), static_cast<size_t>(n), sequence_, mnl_socket_get_portid(socket_), nullptr,
                   nullptr) < 0)
      return errno == ENOENT ? 0 : errno;
    return 0;
  }

 private:
  mnl_socket* socket_;
  uint32_t sequence_ = 0;
};

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
  nfct_close(h);
  MarkWriter writer;
  if (!writer.open() && failure.empty())
    failure = "conntrack: cannot open ctnetlink: " + std::string(std::strerror(errno));
  for (nf_conntrack* ct : entries) {
    if (auto packet = originalOf(ct); packet && writer.open()) {
      ++r.checked;
      bool denied = !trace(table, *packet).accepted;
      bool marked = (nfct_get_attr_u32(ct, ATTR_MARK) & kRevokedConnectionMark) != 0;
      if (denied != marked) {
        if (int error = writer.write(ct, denied); error != 0) {
          if (failure.empty())
            failure = "conntrack: cannot mark a connection: " + std::string(std::strerror(error));
        } else {
          ++(denied ? r.revoked : r.restored);
        }
      }
    }
    nfct_destroy(ct);
  }
  if (!failure.empty()) return Error{failure};
  return r;
}

}  // namespace nftpol::nft
