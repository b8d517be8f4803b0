#pragma once

// One netlink layer (libmnl) for every netlink family nftpol speaks: rtnetlink (links, addresses, routes),
// nf_tables (the table) and ctnetlink (conntrack marks). Requests and dumps go through it, so that every
// caller gets the same things right: acknowledgements read to the end, dumps the kernel interrupted (the
// table changed while it was read) drained and started again, socket options checked, and errors that
// carry the errno and say what was being done.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "nftpol/result.h"

struct mnl_socket;
struct nlmsghdr;

namespace nftpol {

class Netlink {
 public:
  // libmnl's callback: one message of a reply; MNL_CB_OK to go on.
  using Callback = int (*)(const nlmsghdr*, void*);
  static constexpr int kDumpRetries = 5;

  // A socket of `bus` (NETLINK_ROUTE, NETLINK_NETFILTER) in the calling thread's network namespace.
  static Result<Netlink> open(int bus);
  // Takes a socket opened elsewhere (in another network namespace) and binds it.
  static Result<Netlink> adopt(mnl_socket* socket);

  Netlink(Netlink&&) noexcept;
  Netlink& operator=(Netlink&&) noexcept;
  ~Netlink();

  mnl_socket* socket() const { return socket_; }
  uint32_t portid() const { return portid_; }
  uint32_t nextSeq() { return ++seq_; }

  // Sends one request (its sequence number and NLM_F_REQUEST | NLM_F_ACK are set here) and reads the answer
  // to its acknowledgement; `each` sees the messages before it (the answer to a get). An error carries the
  // errno: "what: No such device".
  std::optional<Error> request(nlmsghdr* message, const std::string& what, Callback each = nullptr,
                               void* data = nullptr);

  // A dump request (its sequence number and NLM_F_REQUEST | NLM_F_DUMP are set here): `each` sees every
  // message of the answer. One that the kernel interrupted is read to its end and started again, after
  // `restart` drops what the partial one gave, up to kDumpRetries times.
  std::optional<Error> dump(nlmsghdr* message, const std::string& what, Callback each, void* data,
                            const std::function<void()>& restart);
  // The same without the retry: an interrupted dump is read to its end and reported with errnum EINTR, for a
  // caller whose several dumps must all come from one state of the table.
  std::optional<Error> dumpOnce(nlmsghdr* message, const std::string& what, Callback each, void* data);

  // Socket buffers of `bytes`: the forcing option where we may (CAP_NET_ADMIN), else the plain one, which
  // the kernel caps at net.core.[rw]mem_max.
  std::optional<Error> sizeSendBuffer(int bytes);
  std::optional<Error> sizeReceiveBuffer(int bytes);

 private:
  explicit Netlink(mnl_socket* socket);
  // Reads the answer to `seq` to its end (NLMSG_DONE or an acknowledgement).
  std::optional<Error> receive(uint32_t seq, const std::string& what, Callback each, void* data);
  mnl_socket* socket_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
};

// "what: strerror(err)", carrying err.
Error errnoError(const std::string& what, int err);

}  // namespace nftpol
