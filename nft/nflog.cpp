#include "nftpol/nft/nflog.h"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "nftpol/netlink.h"

namespace nftpol::nft {

struct NflogReader::Impl {
  Netlink nl;
  uint16_t group;
  std::vector<char> buffer;
  uint32_t nextSequence = 0;  // the group numbers from 0 once it is bound with sequence numbers on
};

namespace {

nlmsghdr* configHeader(char* buf, uint16_t group) {
  nlmsghdr* h = mnl_nlmsg_put_header(buf);
  h->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
  auto* g = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(h, sizeof(nfgenmsg)));
  g->nfgen_family = AF_UNSPEC;
  g->version = NFNETLINK_V0;
  g->res_id = htons(group);
  return h;
}

uint16_t load16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}

}  // namespace

bool decodePacketHeaders(const uint8_t* data, size_t length, LoggedPacket& out) {
  if (length < 1) return false;
  size_t l4 = 0;
  uint8_t proto = 0;
  bool firstFragment = true;
  int version = data[0] >> 4;
  if (version == 4) {
    if (length < 20) return false;
    size_t ihl = static_cast<size_t>(data[0] & 0x0f) * 4;
    if (ihl < 20) return false;
    std::array<uint8_t, 16> s{}, d{};
    std::memcpy(s.data(), data + 12, 4);
    std::memcpy(d.data(), data + 16, 4);
    out.source = IpAddress::fromBytes(Family::kV4, s);
    out.destination = IpAddress::fromBytes(Family::kV4, d);
    proto = data[9];
    firstFragment = (load16(data + 6) & 0x1fff) == 0;
    l4 = ihl;
  } else if (version == 6) {
    if (length < 40) return false;
    std::array<uint8_t, 16> s{}, d{};
    std::memcpy(s.data(), data + 8, 16);
    std::memcpy(d.data(), data + 24, 16);
    out.source = IpAddress::fromBytes(Family::kV6, s);
    out.destination = IpAddress::fromBytes(Family::kV6, d);
    proto = data[6];
    l4 = 40;
    // Hop-by-hop, routing and destination options headers, and a fragment header, before the transport's.
    for (int hops = 0; hops < 8; ++hops) {
      if (proto == 44) {  // fragment: fixed 8 bytes
        if (l4 + 8 > length) return false;
        firstFragment = (load16(data + l4 + 2) & 0xfff8) == 0;
        proto = data[l4];
        l4 += 8;
      } else if (proto == 0 || proto == 43 || proto == 60) {
        if (l4 + 2 > length) return false;
        uint8_t next = data[l4];
        l4 += (static_cast<size_t>(data[l4 + 1]) + 1) * 8;
        proto = next;
      } else {
        break;
      }
    }
  } else {
    return false;
  }
  out.protocol = proto;
  out.sourcePort = out.destinationPort = 0;
  if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) && firstFragment) {
    if (l4 + 4 > length) return false;
    out.sourcePort = load16(data + l4);
    out.destinationPort = load16(data + l4 + 2);
  }
  return true;
}

Result<std::unique_ptr<NflogReader>> NflogReader::open(uint16_t group, uint16_t snaplen,
                                                       std::chrono::milliseconds batchDelay) {
  auto nl = Netlink::open(NETLINK_NETFILTER);
  if (!nl) return nl.error();
  std::string what = "nfnetlink_log: binding group " + std::to_string(group);
  char buf[MNL_SOCKET_BUFFER_SIZE];
  {
    nlmsghdr* h = configHeader(buf, group);
    nfulnl_msg_config_cmd cmd{NFULNL_CFG_CMD_BIND};
    mnl_attr_put(h, NFULA_CFG_CMD, sizeof cmd, &cmd);
    if (auto e = nl->request(h, what)) return *e;
  }
  nlmsghdr* h = configHeader(buf, group);
  nfulnl_msg_config_mode mode{};
  mode.copy_range = htonl(snaplen);
  mode.copy_mode = NFULNL_COPY_PACKET;
  mnl_attr_put(h, NFULA_CFG_MODE, sizeof mode, &mode);
  mnl_attr_put_u16(h, NFULA_CFG_FLAGS, htons(NFULNL_CFG_F_SEQ));
  // Up to 64 packets in one message, sent at the latest after the delay (in hundredths of a second).
  mnl_attr_put_u32(h, NFULA_CFG_QTHRESH, htonl(64));
  mnl_attr_put_u32(h, NFULA_CFG_TIMEOUT,
                   htonl(static_cast<uint32_t>(std::max<int64_t>(1, batchDelay.count() / 10))));
  mnl_attr_put_u32(h, NFULA_CFG_NLBUFSIZ, htonl(65536));
  if (auto e = nl->request(h, "nfnetlink_log: configuring group " + std::to_string(group))) return *e;
  // A burst queues while the controller is busy elsewhere; what does not fit is an overrun, counted.
  (void)nl->sizeReceiveBuffer(8 << 20);
  auto impl = std::make_unique<Impl>(Impl{std::move(*nl), group, std::vector<char>(1 << 17)});
  return std::unique_ptr<NflogReader>(new NflogReader(std::move(impl)));
}

NflogReader::NflogReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
NflogReader::~NflogReader() {
  if (!impl_) return;
  char buf[MNL_SOCKET_BUFFER_SIZE];
  nlmsghdr* h = configHeader(buf, impl_->group);
  nfulnl_msg_config_cmd cmd{NFULNL_CFG_CMD_UNBIND};
  mnl_attr_put(h, NFULA_CFG_CMD, sizeof cmd, &cmd);
  (void)impl_->nl.request(h, "nfnetlink_log: unbinding");  // closing the socket unbinds it as well
}

int NflogReader::fd() const {
  return mnl_socket_get_fd(impl_->nl.socket());
}

namespace {
struct Parse {
  const std::function<void(const LoggedPacket&)>* each;
  LogLosses* losses;
  NflogReader::Impl* impl;
  size_t count = 0;
};

int attribute(const nlattr* a, void* data) {
  auto** table = static_cast<const nlattr**>(data);
  uint16_t type = mnl_attr_get_type(a);
  if (type <= NFULA_MAX) table[type] = a;
  return MNL_CB_OK;
}
}  // namespace

Result<size_t> NflogReader::read(const std::function<void(const LoggedPacket&)>& each) {
  Parse parse{&each, &losses_, impl_.get()};
  auto callback = [](const nlmsghdr* h, void* data) -> int {
    auto* p = static_cast<Parse*>(data);
    if (h->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET)) return MNL_CB_OK;
    const nlattr* tb[NFULA_MAX + 1] = {};
    mnl_attr_parse(h, sizeof(nfgenmsg), attribute, tb);
    LoggedPacket packet;
    if (tb[NFULA_SEQ]) {
      packet.sequence = ntohl(mnl_attr_get_u32(tb[NFULA_SEQ]));
      uint32_t skipped = packet.sequence - p->impl->nextSequence;  // wraps as the kernel's does
      p->losses->sequenceGaps += skipped;
      p->losses->numbered += uint64_t{skipped} + 1;
      p->impl->nextSequence = packet.sequence + 1;
    }
    if (!tb[NFULA_PAYLOAD] ||
        !decodePacketHeaders(static_cast<const uint8_t*>(mnl_attr_get_payload(tb[NFULA_PAYLOAD])),
                             mnl_attr_get_payload_len(tb[NFULA_PAYLOAD]), packet)) {
      ++p->losses->unreadable;
      return MNL_CB_OK;
    }
    if (tb[NFULA_PREFIX]) packet.prefix = mnl_attr_get_str(tb[NFULA_PREFIX]);
    if (tb[NFULA_MARK]) packet.mark = ntohl(mnl_attr_get_u32(tb[NFULA_MARK]));
    (*p->each)(packet);
    ++p->count;
    return MNL_CB_OK;
  };
  for (;;) {
    ssize_t n = recv(fd(), impl_->buffer.data(), impl_->buffer.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return parse.count;
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) {
        ++losses_.overruns;
        continue;
      }
      return errnoError("nfnetlink_log: reading", errno);
    }
    // Multicast-like deliveries carry sequence 0 and port 0; libmnl checks neither when both are 0.
    mnl_cb_run(impl_->buffer.data(), static_cast<size_t>(n), 0, 0, callback, &parse);
  }
}

}  // namespace nftpol::nft
