#pragma once

#include <chrono>
#include <thread>

namespace nftpol::controller {

// SIGTERM and SIGINT for the whole process, taken by a thread of their own. Create it first, before any other
// thread starts, so that every thread inherits the blocked mask and no signal lands where nobody looks.
//
// Once a signal arrives, fd() becomes readable (and stays so) and the process has `deadline` to finish its
// orderly shutdown, that is, until this object is destroyed. A shutdown that hangs (a dependency's thread
// that ignores cancellation, a join that never returns) ends the process at the deadline with exit status 1
// and an error line, leaving the rules in place: a stopped controller is gone in bounded time, in every
// state.
class StopSignal {
 public:
  explicit StopSignal(std::chrono::milliseconds deadline);
  ~StopSignal();  // the orderly shutdown finished: the watchdog stands down
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;

  int fd() const { return stopFd_; }  // readable once a stop was asked for; poll it, never read it

 private:
  void run();
  std::chrono::milliseconds deadline_;
  int signalFd_ = -1, stopFd_ = -1, doneFd_ = -1;
  std::thread thread_;
};

}  // namespace nftpol::controller
