#pragma once

// The node's end of the CNI handoff (nftpol/cni/handoff.h): a unix SOCK_SEQPACKET socket, mode 0600, that
// takes root peers only (SO_PEERCRED). Its own thread accepts, checks and reads; each connection brings one
// request of at most kMaxMessage bytes within a second, or it is answered with an error and closed, so a
// malformed, oversized or silent client never stalls the controller. Requests wait for the controller's loop,
// which take()s them (fd() becomes readable) and answers each once the kernel holds what it asked for.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "nftpol/cni/handoff.h"
#include "nftpol/result.h"

namespace nftpol::controller {

struct CniServerOptions {
  std::chrono::milliseconds readTimeout{1000};  // from accept to a whole request
  size_t maxConnections = 256;                  // reading or awaiting their answer; more are refused
  bool rootOnly = true;                         // peers other than uid 0 are refused
};

class CniServer {
 public:
  // Binds `path` (its directory made, mode 0700, when missing). A stale socket left by a dead controller is
  // replaced; one that a live process answers on is an error.
  static Result<std::unique_ptr<CniServer>> start(const std::string& path, CniServerOptions options = {});
  ~CniServer();  // unlinks the socket; requests not yet answered are closed (their plugins retry)
  CniServer(const CniServer&) = delete;
  CniServer& operator=(const CniServer&) = delete;

  struct Incoming {
    uint64_t id;
    cni::handoff::Request request;
    std::chrono::steady_clock::time_point received;
  };
  // Readable while requests wait to be taken.
  int fd() const { return wakeFd_; }
  std::vector<Incoming> take();
  // Sends the reply and closes the connection; an id already answered, or whose client left, is ignored.
  void answer(uint64_t id, const cni::handoff::Reply& reply);

  struct Counters {
    size_t accepted = 0, refused = 0;  // refused: malformed, oversized, too slow, not root, too many
  };
  Counters counters() const;
  const std::string& path() const { return path_; }

 private:
  CniServer(std::string path, int listenFd, int wakeFd, int stopFd, CniServerOptions options);
  void run();
  struct Connection;
  std::string path_;
  int listenFd_, wakeFd_, stopFd_;
  CniServerOptions options_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> connections_;
  std::vector<Incoming> incoming_;
  uint64_t nextId_ = 1;
  Counters counters_;
  std::thread thread_;
};

}  // namespace nftpol::controller
