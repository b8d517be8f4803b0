#include "nftpol/netlink.h"

#include <libmnl/libmnl.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <utility>
#include <vector>

namespace nftpol {

Error errnoError(const std::string& what, int err) {
  return Error{what + ": " + std::strerror(err), err};
}

Netlink::Netlink(mnl_socket* socket) : socket_(socket), portid_(mnl_socket_get_portid(socket)) {
  // Sequence numbers of our own, so that a reply to someone else's earlier socket is never taken for ours.
  seq_ = static_cast<uint32_t>(std::time(nullptr));
}

Result<Netlink> Netlink::open(int bus) {
  mnl_socket* s = mnl_socket_open2(bus, SOCK_CLOEXEC);
  if (!s) return errnoError("netlink: cannot open a socket", errno);
  return adopt(s);
}

Result<Netlink> Netlink::adopt(mnl_socket* s) {
  if (mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0) {
    auto e = errnoError("netlink: cannot bind the socket", errno);
    mnl_socket_close(s);
    return e;
  }
  int on = 1;  // acknowledgements carry the header of what they acknowledge, not the whole message back
  if (mnl_socket_setsockopt(s, NETLINK_CAP_ACK, &on, sizeof on) < 0) {
    auto e = errnoError("netlink: setting NETLINK_CAP_ACK", errno);
    mnl_socket_close(s);
    return e;
  }
  return Netlink(s);
}

Netlink::Netlink(Netlink&& o) noexcept
    : socket_(std::exchange(o.socket_, nullptr)), portid_(o.portid_), seq_(o.seq_) {}
Netlink& Netlink::operator=(Netlink&& o) noexcept {
  std::swap(socket_, o.socket_);
  std::swap(portid_, o.portid_);
  std::swap(seq_, o.seq_);
  return *this;
}
Netlink::~Netlink() {
  if (socket_) mnl_socket_close(socket_);
}

namespace {
int ignore(const nlmsghdr*, void*) {
  return MNL_CB_OK;
}

// After an interrupted dump the rest of it is still on its way: read it up to its end, so that the next
// request does not meet it.
std::optional<Error> drain(mnl_socket* s, uint32_t seq, std::vector<char>& buf, const std::string& what) {
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(s, buf.data(), buf.size());
    if (n < 0) return errnoError(what, errno);
    int remaining = static_cast<int>(n);
    for (auto* h = reinterpret_cast<nlmsghdr*>(buf.data()); mnl_nlmsg_ok(h, remaining);
         h = mnl_nlmsg_next(h, &remaining))
      if (h->nlmsg_seq == seq && (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR))
        return std::nullopt;
  }
}
}  // namespace

std::optional<Error> Netlink::receive(uint32_t seq, const std::string& what, Callback each, void* data) {
  // As large as the kernel makes a dump's messages for a reader that takes them whole (it sizes them after
  // the largest read it has seen, up to 32 KiB and more): a smaller read would truncate them.
  std::vector<char> buf(1 << 16);
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(socket_, buf.data(), buf.size());
    if (n < 0) return errnoError(what, errno);
    int r = mnl_cb_run(buf.data(), static_cast<size_t>(n), seq, portid_, each ? each : ignore, data);
    if (r == MNL_CB_STOP) return std::nullopt;
    if (r < 0) {
      int err = errno;
      if (err == EINTR) {  // NLM_F_DUMP_INTR: the rest of the dump follows
        if (auto e = drain(socket_, seq, buf, what)) return e;
      }
      return errnoError(what, err);
    }
  }
}

std::optional<Error> Netlink::request(nlmsghdr* message, const std::string& what, Callback each, void* data) {
  message->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  message->nlmsg_seq = nextSeq();
  if (mnl_socket_sendto(socket_, message, message->nlmsg_len) < 0) return errnoError(what, errno);
  return receive(message->nlmsg_seq, what, each, data);
}

std::optional<Error> Netlink::dumpOnce(nlmsghdr* message, const std::string& what, Callback each,
                                       void* data) {
  message->nlmsg_flags |= NLM_F_REQUEST | NLM_F_DUMP;
  message->nlmsg_seq = nextSeq();
  if (mnl_socket_sendto(socket_, message, message->nlmsg_len) < 0) return errnoError(what, errno);
  return receive(message->nlmsg_seq, what, each, data);
}

std::optional<Error> Netlink::dump(nlmsghdr* message, const std::string& what, Callback each, void* data,
                                   const std::function<void()>& restart) {
  for (int attempt = 0;; ++attempt) {
    auto e = dumpOnce(message, what, each, data);
    if (!e || e->errnum != EINTR) return e;
    if (attempt + 1 == kDumpRetries)
      return Error{
          what + ": the table kept changing while being read (" + std::to_string(kDumpRetries) + " attempts)",
          EINTR};
    restart();
  }
}

namespace {
std::optional<Error> sizeBuffer(int fd, int force, int plain, int bytes, const char* what) {
  if (setsockopt(fd, SOL_SOCKET, force, &bytes, sizeof bytes) == 0) return std::nullopt;
  if (errno == EPERM && setsockopt(fd, SOL_SOCKET, plain, &bytes, sizeof bytes) == 0) return std::nullopt;
  return errnoError(std::string("netlink: sizing the ") + what + " buffer", errno);
}
}  // namespace

std::optional<Error> Netlink::sizeSendBuffer(int bytes) {
  return sizeBuffer(mnl_socket_get_fd(socket_), SO_SNDBUFFORCE, SO_SNDBUF, bytes, "send");
}
std::optional<Error> Netlink::sizeReceiveBuffer(int bytes) {
  return sizeBuffer(mnl_socket_get_fd(socket_), SO_RCVBUFFORCE, SO_RCVBUF, bytes, "receive");
}

}  // namespace nftpol
