#include "nftpol/nft/trace.h"

#include <libmnl/libmnl.h>
#include <libnftnl/trace.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "nftpol/netlink.h"

namespace nftpol::nft {

struct TraceReader::Impl {
  Netlink nl;
  std::vector<char> buffer;
};

Result<std::unique_ptr<TraceReader>> TraceReader::open() {
  auto nl = Netlink::open(NETLINK_NETFILTER);
  if (!nl) return nl.error();
  int group = NFNLGRP_NFTRACE;
  if (mnl_socket_setsockopt(nl->socket(), NETLINK_ADD_MEMBERSHIP, &group, sizeof group) < 0)
    return errnoError("nf_tables trace: joining the trace group", errno);
  (void)nl->sizeReceiveBuffer(4 << 20);
  auto impl = std::make_unique<Impl>(Impl{std::move(*nl), std::vector<char>(1 << 16)});
  return std::unique_ptr<TraceReader>(new TraceReader(std::move(impl)));
}

TraceReader::TraceReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TraceReader::~TraceReader() = default;

int TraceReader::fd() const {
  return mnl_socket_get_fd(impl_->nl.socket());
}

namespace {

std::string verdictName(int32_t code) {
  switch (code) {
    case NF_ACCEPT:
      return "accept";
    case NF_DROP:
      return "drop";
    case NFT_JUMP:
      return "jump";
    case NFT_GOTO:
      return "goto";
    case NFT_RETURN:
      return "return";
    case NFT_CONTINUE:
      return "continue";
    case NFT_BREAK:
      return "break";
    default:
      return std::to_string(code);
  }
}

struct Parse {
  const std::string* table;
  const std::function<void(const TraceEvent&)>* each;
  size_t count = 0;
};

}  // namespace

Result<size_t> TraceReader::read(const std::string& table,
                                 const std::function<void(const TraceEvent&)>& each) {
  Parse parse{&table, &each};
  auto callback = [](const nlmsghdr* h, void* data) -> int {
    auto* p = static_cast<Parse*>(data);
    if ((h->nlmsg_type & 0xff) != NFT_MSG_TRACE) return MNL_CB_OK;
    nftnl_trace* t = nftnl_trace_alloc();
    if (nftnl_trace_nlmsg_parse(h, t) < 0 || !nftnl_trace_is_set(t, NFTNL_TRACE_TABLE) ||
        *p->table != nftnl_trace_get_str(t, NFTNL_TRACE_TABLE)) {
      nftnl_trace_free(t);
      return MNL_CB_OK;
    }
    TraceEvent e;
    e.id = nftnl_trace_get_u32(t, NFTNL_TRACE_ID);
    switch (nftnl_trace_get_u32(t, NFTNL_TRACE_TYPE)) {
      case NFT_TRACETYPE_RULE:
        e.type = TraceEvent::Type::kRule;
        break;
      case NFT_TRACETYPE_RETURN:
        e.type = TraceEvent::Type::kReturn;
        break;
      case NFT_TRACETYPE_POLICY:
        e.type = TraceEvent::Type::kPolicy;
        break;
      default:
        break;
    }
    if (nftnl_trace_is_set(t, NFTNL_TRACE_CHAIN)) e.chain = nftnl_trace_get_str(t, NFTNL_TRACE_CHAIN);
    if (nftnl_trace_is_set(t, NFTNL_TRACE_RULE_HANDLE))
      e.ruleHandle = nftnl_trace_get_u64(t, NFTNL_TRACE_RULE_HANDLE);
    if (nftnl_trace_is_set(t, NFTNL_TRACE_VERDICT))
      e.verdict = verdictName(static_cast<int32_t>(nftnl_trace_get_u32(t, NFTNL_TRACE_VERDICT)));
    else if (nftnl_trace_is_set(t, NFTNL_TRACE_POLICY))
      e.verdict = verdictName(static_cast<int32_t>(nftnl_trace_get_u32(t, NFTNL_TRACE_POLICY)));
    if (nftnl_trace_is_set(t, NFTNL_TRACE_JUMP_TARGET))
      e.target = nftnl_trace_get_str(t, NFTNL_TRACE_JUMP_TARGET);
    if (nftnl_trace_is_set(t, NFTNL_TRACE_NETWORK_HEADER)) {
      uint32_t len = 0;
      const void* net = nftnl_trace_get_data(t, NFTNL_TRACE_NETWORK_HEADER, &len);
      std::vector<uint8_t> bytes(static_cast<const uint8_t*>(net), static_cast<const uint8_t*>(net) + len);
      if (nftnl_trace_is_set(t, NFTNL_TRACE_TRANSPORT_HEADER)) {
        uint32_t tlen = 0;
        const auto* tr =
            static_cast<const uint8_t*>(nftnl_trace_get_data(t, NFTNL_TRACE_TRANSPORT_HEADER, &tlen));
        bytes.insert(bytes.end(), tr, tr + tlen);
      }
      e.hasPacket = decodePacketHeaders(bytes.data(), bytes.size(), e.packet);
    }
    nftnl_trace_free(t);
    (*p->each)(e);
    ++p->count;
    return MNL_CB_OK;
  };
  for (;;) {
    ssize_t n = recv(fd(), impl_->buffer.data(), impl_->buffer.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return parse.count;
      if (errno == EINTR || errno == ENOBUFS) continue;
      return errnoError("nf_tables trace: reading", errno);
    }
    mnl_cb_run(impl_->buffer.data(), static_cast<size_t>(n), 0, 0, callback, &parse);
  }
}

}  // namespace nftpol::nft
