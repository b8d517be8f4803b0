#include "nftpol/controller/stop_signal.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>

#include "nftpol/controller/log.h"

namespace nftpol::controller {

StopSignal::StopSignal(std::chrono::milliseconds deadline) : deadline_(deadline) {
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signalFd_ = signalfd(-1, &mask, SFD_CLOEXEC);
  stopFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  doneFd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  thread_ = std::thread([this] { run(); });
}

StopSignal::~StopSignal() {
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(doneFd_, &one, sizeof one);
  thread_.join();
  for (int fd : {signalFd_, stopFd_, doneFd_})
    if (fd >= 0) ::close(fd);
}

void StopSignal::run() {
  pollfd fds[2] = {{doneFd_, POLLIN, 0}, {signalFd_, POLLIN, 0}};
  while (::poll(fds, 2, -1) < 0)
    if (errno != EINTR) return;
  if (fds[0].revents & POLLIN) return;
  signalfd_siginfo info{};
  [[maybe_unused]] auto r = ::read(signalFd_, &info, sizeof info);
  logInfo("stopping on " + std::string(info.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM") +
              "; the rules stay in place",
          "event=stop-requested");
  uint64_t one = 1;
  [[maybe_unused]] auto w = ::write(stopFd_, &one, sizeof one);
  pollfd done{doneFd_, POLLIN, 0};
  int ready;
  while ((ready = ::poll(&done, 1, static_cast<int>(deadline_.count()))) < 0)
    if (errno != EINTR) break;
  if (ready > 0) return;
  logError("the shutdown did not finish within " + std::to_string(deadline_.count()) +
               " ms; exiting now, the rules stay in place",
           "event=stop-deadline");
  ::_exit(1);
}

}  // namespace nftpol::controller
