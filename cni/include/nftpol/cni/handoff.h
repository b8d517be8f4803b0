#pragma once

// The handoff between nftpol-bridge and the node's controller: one request and one reply per connection, each
// one SOCK_SEQPACKET message of JSON over a unix socket. ADD tells the controller which pod got which
// addresses, and the controller replies once the kernel enforces the pod's policies for them; DEL tells it to
// let go of them; STATUS asks whether it is ready to take an ADD. Both ends read and write messages only
// through here.

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "nftpol/result.h"
#include "nftpol/rtnl.h"

namespace nftpol::cni::handoff {

// Either way. A request of a pod with a few addresses is a few hundred bytes; a bigger one is refused, never
// cut.
constexpr size_t kMaxMessage = 16 * 1024;

inline constexpr const char* kDefaultSocket = "/run/nftpol/cni.sock";

enum class Op { kAdd, kDel, kStatus };

struct Request {
  Op op = Op::kAdd;
  // From CNI_ARGS (K8S_POD_NAMESPACE, K8S_POD_NAME, K8S_POD_UID); DEL and STATUS may lack them.
  std::string podNamespace, podName, podUid;
  std::string containerId, ifname;
  std::vector<InterfaceAddress> addresses;  // what IPAM gave (ADD) or what is let go (DEL)
  // How long the plugin waits for the reply: the controller answers before, also when it has to say
  // "pending".
  std::chrono::milliseconds wait{5000};

  std::string podKey() const { return podNamespace + "/" + podName; }
  bool operator==(const Request&) const;
};

struct Reply {
  enum class Status {
    kProgrammed,  // ADD: the kernel enforces the pod's policies for its addresses
    kPending,     // ADD: bound, but the pod object has not arrived; its addresses stay closed until it does
    kReleased,    // DEL: the addresses are closed, their connections gone
    kReady,       // STATUS
    kRefused,     // anything: the request cannot be served; `message` says why
  };
  Status status = Status::kRefused;
  std::string message;
  bool operator==(const Reply&) const = default;
};

std::string encode(const Request& request);
std::string encode(const Reply& reply);
// Errors say which field is wrong and how. Never throws, whatever the bytes (a fuzz target runs them).
Result<Request> parseRequest(std::string_view message);
Result<Reply> parseReply(std::string_view message);

const char* toString(Op op);  // "ADD"
const char* toString(Reply::Status status);

// The plugin's side: connects to `socketPath`, sends `request` and waits up to request.wait for the reply.
// An error says what failed: no socket there, nobody listening, no reply in time, a reply that is not one.
Result<Reply> call(const std::string& socketPath, const Request& request);

}  // namespace nftpol::cni::handoff
