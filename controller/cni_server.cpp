#include "nftpol/controller/cni_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace nftpol::controller {

using Clock = std::chrono::steady_clock;
namespace handoff = cni::handoff;

struct CniServer::Connection {
  uint64_t id;
  int fd;
  Clock::time_point deadline;  // reading: when it is given up
  bool awaiting = false;       // its request was taken; the answer is owed
  ~Connection() { ::close(fd); }
};

namespace {

Error systemError(const std::string& what) {
  int e = errno;
  return Error{what + ": " + std::strerror(e), e};
}

bool sockaddrFor(const std::string& path, sockaddr_un& addr) {
  addr = {};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) return false;
  std::memcpy(addr.sun_path, path.data(), path.size());
  return true;
}

void sendReply(int fd, handoff::Reply::Status status, const std::string& message) {
  std::string out = handoff::encode(handoff::Reply{status, message});
  [[maybe_unused]] auto n = ::send(fd, out.data(), out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

Result<std::unique_ptr<CniServer>> CniServer::start(const std::string& path, CniServerOptions options) {
  // The socket is bound under a name of its own, made the node's (0600) and listening, and only then renamed
  // into place: a socket found at `path` is always one a client of the node can connect to.
  const std::string made = path + "~";
  sockaddr_un addr, madeAddr;
  if (!sockaddrFor(path, addr) || !sockaddrFor(made, madeAddr))
    return Error{"--cni-socket \"" + path + "\": empty or longer than 106 bytes"};
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return Error{"cannot make " + dir.string() + ": " + ec.message(), ec.value()};
    ::chmod(dir.c_str(), 0700);
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Error{path + " exists and is not a socket; not replacing it"};
    int probe = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    bool live = probe >= 0 && ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    if (probe >= 0) ::close(probe);
    if (live) return Error{"another controller listens on " + path, EADDRINUSE};
    ::unlink(path.c_str());  // left by a controller that is gone
  }
  ::unlink(made.c_str());  // left by a start that failed half-way
  int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return systemError("socket");
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&madeAddr), sizeof madeAddr) != 0) {
    auto e = systemError("cannot bind " + made);
    ::close(fd);
    return e;
  }
  if (::chmod(made.c_str(), 0600) != 0 || ::listen(fd, 128) != 0 ||
      ::rename(made.c_str(), path.c_str()) != 0) {
    auto e = systemError("cannot listen on " + path);
    ::close(fd);
    ::unlink(made.c_str());
    return e;
  }
  int wake = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), stop = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0 || stop < 0) {
    auto e = systemError("eventfd");
    for (int f : {fd, wake, stop})
      if (f >= 0) ::close(f);
    ::unlink(path.c_str());
    return e;
  }
  return std::unique_ptr<CniServer>(new CniServer(path, fd, wake, stop, options));
}

CniServer::CniServer(std::string path, int listenFd, int wakeFd, int stopFd, CniServerOptions options)
    : path_(std::move(path)), listenFd_(listenFd), wakeFd_(wakeFd), stopFd_(stopFd), options_(options) {
  thread_ = std::thread([this] { run(); });
}

CniServer::~CniServer() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(stopFd_, &one, sizeof one);
  thread_.join();
  connections_.clear();
  ::unlink(path_.c_str());
  for (int f : {listenFd_, wakeFd_, stopFd_})
    ::close(f);
}

std::vector<CniServer::Incoming> CniServer::take() {
  std::lock_guard lock(mu_);
  uint64_t count;
  [[maybe_unused]] auto n = ::read(wakeFd_, &count, sizeof count);
  std::vector<Incoming> out;
  out.swap(incoming_);
  return out;
}

void CniServer::answer(uint64_t id, const handoff::Reply& reply) {
  std::lock_guard lock(mu_);
  auto it =
      std::find_if(connections_.begin(), connections_.end(), [&](const auto& c) { return c->id == id; });
  if (it == connections_.end()) return;
  sendReply((*it)->fd, reply.status, reply.message);
  connections_.erase(it);
}

CniServer::Counters CniServer::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

void CniServer::run() {
  std::string buffer(handoff::kMaxMessage + 1, '\0');
  for (;;) {
    std::vector<pollfd> fds = {{stopFd_, POLLIN, 0}, {listenFd_, POLLIN, 0}};
    std::vector<uint64_t> ids;
    int timeout = -1;
    {
      std::lock_guard lock(mu_);
      auto now = Clock::now();
      for (const auto& c : connections_) {
        // Awaiting: POLLIN only tells that the client went away (it sends nothing more).
        fds.push_back({c->fd, POLLIN, 0});
        ids.push_back(c->id);
        if (!c->awaiting) {
          auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c->deadline - now).count();
          timeout = timeout < 0 ? static_cast<int>(std::max<int64_t>(left, 0))
                                : std::min(timeout, static_cast<int>(std::max<int64_t>(left, 0)));
        }
      }
    }
    int n = ::poll(fds.data(), fds.size(), timeout);
    if (n < 0 && errno != EINTR) return;
    if (fds[0].revents & POLLIN) return;
    std::lock_guard lock(mu_);
    auto now = Clock::now();
    for (size_t i = 0; i < ids.size(); ++i) {
      auto it = std::find_if(connections_.begin(), connections_.end(),
                             [&](const auto& c) { return c->id == ids[i]; });
      if (it == connections_.end()) continue;  // answered meanwhile
      Connection& c = **it;
      short events = fds[i + 2].revents;
      if (c.awaiting) {
        if (events & (POLLIN | POLLHUP | POLLERR)) connections_.erase(it);  // its plugin gave up
        continue;
      }
      if (!(events & (POLLIN | POLLHUP | POLLERR))) {
        if (now >= c.deadline) {
          sendReply(c.fd, handoff::Reply::Status::kRefused,
                    "no request within " + std::to_string(options_.readTimeout.count()) + " ms");
          ++counters_.refused;
          connections_.erase(it);
        }
        continue;
      }
      ssize_t got = ::recv(c.fd, buffer.data(), buffer.size(), MSG_TRUNC | MSG_DONTWAIT);
      if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (got <= 0) {
        connections_.erase(it);
        continue;
      }
      if (static_cast<size_t>(got) > handoff::kMaxMessage) {
        sendReply(c.fd, handoff::Reply::Status::kRefused,
                  "a request of " + std::to_string(got) + " bytes is over the limit of " +
                      std::to_string(handoff::kMaxMessage));
        ++counters_.refused;
        connections_.erase(it);
        continue;
      }
      auto request = handoff::parseRequest(std::string_view(buffer.data(), static_cast<size_t>(got)));
      if (!request) {
        sendReply(c.fd, handoff::Reply::Status::kRefused, "malformed request: " + request.error().message);
        ++counters_.refused;
        connections_.erase(it);
        continue;
      }
      c.awaiting = true;
      incoming_.push_back({c.id, std::move(*request), now});
      uint64_t one = 1;
      [[maybe_unused]] auto w = ::write(wakeFd_, &one, sizeof one);
    }
    if (fds[1].revents & POLLIN) {
      for (;;) {
        int fd = ::accept4(listenFd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        ucred cred{};
        socklen_t len = sizeof cred;
        bool root = ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == 0;
        if (options_.rootOnly && !root) {
          sendReply(fd, handoff::Reply::Status::kRefused, "only root may hand pods to the controller");
          ++counters_.refused;
          ::close(fd);
          continue;
        }
        if (connections_.size() >= options_.maxConnections) {
          sendReply(fd, handoff::Reply::Status::kRefused,
                    "the controller is busy: " + std::to_string(connections_.size()) + " requests open");
          ++counters_.refused;
          ::close(fd);
          continue;
        }
        ++counters_.accepted;
        connections_.push_back(
            std::unique_ptr<Connection>(new Connection{nextId_++, fd, now + options_.readTimeout, false}));
      }
    }
  }
}

}  // namespace nftpol::controller
