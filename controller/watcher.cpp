#include "nftpol/controller/watcher.h"

#include <poll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
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
  int wd = inotify_add_watch(fd, directory.c_str(), kMask);
  if (wd < 0) return Error{"inotify: cannot watch " + directory + ": " + std::strerror(errno)};
  w.watched_[wd] = directory;
  w.addTree();
  return w;
}

Watcher::Watcher(Watcher&& other) noexcept
    : fd_(other.fd_), directory_(std::move(other.directory_)), watched_(std::move(other.watched_)) {
  other.fd_ = -1;
}

void Watcher::watch(const std::string& directory) {
  int wd = inotify_add_watch(fd_, directory.c_str(), kMask);
  if (wd >= 0) watched_[wd] = directory;
}

Watcher::~Watcher() {
  if (fd_ >= 0) ::close(fd_);
}

// Subdirectories, including ones created since the last call (inotify does not recurse by itself). One that
// cannot be read is skipped, not the end of the walk: the others are still watched.
void Watcher::addTree() {
  namespace fs = std::filesystem;
  auto add = [this](const fs::path& directory, auto& self) -> void {
    std::error_code ec;
    for (fs::directory_iterator it(directory, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
      std::error_code statEc;
      if (!fs::is_directory(it->symlink_status(statEc))) continue;
      watch(it->path().string());
      self(it->path(), self);
    }
  };
  add(directory_, add);
}

// A symbolic link is whole once made: no close follows its IN_CREATE.
bool Watcher::madeLink(const inotify_event& e) const {
  if (!(e.mask & IN_CREATE) || (e.mask & IN_ISDIR) || e.len == 0) return false;
  auto dir = watched_.find(e.wd);
  struct stat st {};
  return dir != watched_.end() && ::lstat((dir->second + "/" + e.name).c_str(), &st) == 0 &&
         S_ISLNK(st.st_mode);
}

Watcher::Event Watcher::wait(std::chrono::milliseconds timeout, Interrupts interrupts) {
  // A negative fd is ignored by poll.
  pollfd fds[3] = {{fd_, POLLIN, 0}, {interrupts.stop, POLLIN, 0}, {interrupts.handoff, POLLIN, 0}};
  int n = poll(fds, 3, static_cast<int>(timeout.count()));
  if (n <= 0) return Event::kTimeout;
  if (fds[1].revents & POLLIN) return Event::kStop;
  if (fds[2].revents & POLLIN) return Event::kHandoff;
  alignas(inotify_event) char buf[16384];
  bool written = false, other = false;
  ssize_t got;
  while ((got = ::read(fd_, buf, sizeof buf)) > 0) {
    for (ssize_t at = 0; at < got;) {
      const auto* e = reinterpret_cast<const inotify_event*>(buf + at);
      written = written || (e->mask & (IN_CLOSE_WRITE | IN_MOVED_TO));
      other = other || (e->mask & ~(IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_ISDIR)) || madeLink(*e);
      at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
    }
  }
  addTree();
  if (other) return Event::kChanged;
  return written ? Event::kWritten : Event::kCreated;
}

}  // namespace nftpol::controller
