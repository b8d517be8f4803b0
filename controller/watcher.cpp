#include "nftpol/controller/watcher.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace nftpol::controller {

namespace {
constexpr uint32_t kMask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE |
                           IN_DELETE_SELF | IN_ATTRIB | IN_ONLYDIR * 0;
}

Result<Watcher> Watcher::create(const std::string& directory) {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return Error{"inotify: " + std::string(std::strerror(errno))};
  Watcher w(fd, directory);
  if (inotify_add_watch(fd, directory.c_str(), kMask) < 0)
    return Error{"inotify: cannot watch " + directory + ": " + std::strerror(errno)};
  w.addTree();
  return w;
}

Watcher::Watcher(Watcher&& other) noexcept : fd_(other.fd_), directory_(std::move(other.directory_)) {
  other.fd_ = -1;
}

Watcher::~Watcher() {
  if (fd_ >= 0) ::close(fd_);
}

// Subdirectories, including ones created since the last call (inotify does not recurse by itself).
void Watcher::addTree() {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(directory_, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (it->is_directory(ec)) inotify_add_watch(fd_, it->path().c_str(), kMask);
}

Watcher::Event Watcher::wait(std::chrono::milliseconds timeout, int stopFd) {
  pollfd fds[2] = {{fd_, POLLIN, 0}, {stopFd, POLLIN, 0}};
  int n = poll(fds, stopFd >= 0 ? 2 : 1, static_cast<int>(timeout.count()));
  if (n <= 0) return Event::kTimeout;
  if (stopFd >= 0 && (fds[1].revents & POLLIN)) return Event::kStop;
  alignas(inotify_event) char buf[16384];
  bool written = false, other = false;
  ssize_t got;
  while ((got = ::read(fd_, buf, sizeof buf)) > 0) {
    for (ssize_t at = 0; at < got;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buf + at);
      written = written || (e->mask & (IN_CLOSE_WRITE | IN_MOVED_TO));
      other = other || (e->mask & ~(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ISDIR));
      at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
    }
  }
  addTree();
  if (other) return Event::kChanged;
  return written ? Event::kWritten : Event::kCreated;
}

}  // namespace nftpol::controller
