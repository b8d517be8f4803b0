#pragma once

#include <chrono>
#include <map>
#include <string>

#include "nftpol/controller/interrupts.h"
#include "nftpol/result.h"

struct inotify_event;

namespace nftpol::controller {

// Watches a directory tree with inotify. wait() returns when something in it changed (or the timeout passed,
// or the stop fd became readable); the caller then rereads what changed.
class Watcher {
 public:
  static Result<Watcher> create(const std::string& directory);
  Watcher(Watcher&& other) noexcept;
  Watcher& operator=(Watcher&&) = delete;
  ~Watcher();

  // kWritten: files were only written whole (closed after writing, or renamed into place); kCreated: files or
  // directories were only created (a file's content follows with its close); kChanged: something else, such
  // as a deletion, which is often the first half of a replacement, or a symbolic link made (no close
  // follows).
  enum class Event { kWritten, kCreated, kChanged, kTimeout, kStop, kHandoff };
  // Blocks up to `timeout`; `interrupts` end the wait (kStop, kHandoff) before anything is read.
  Event wait(std::chrono::milliseconds timeout, Interrupts interrupts);

 private:
  explicit Watcher(int fd, std::string directory) : fd_(fd), directory_(std::move(directory)) {}
  void addTree();
  void watch(const std::string& directory);
  bool madeLink(const inotify_event& e) const;
  int fd_ = -1;
  std::string directory_;
  std::map<int, std::string> watched_;  // watch descriptor -> directory
};

}  // namespace nftpol::controller
