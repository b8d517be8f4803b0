#include "nftpol/controller/flow_reader.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "nftpol/controller/log.h"
#include "nftpol/netlink.h"

namespace nftpol::controller {

Result<std::unique_ptr<FlowReader>> FlowReader::start(uint16_t group, uint16_t snaplen,
                                                      FlowCollector& collector) {
  // The kernel sends a batch at the latest 100 ms after its first packet: well inside the flush interval.
  auto reader = nft::NflogReader::open(group, snaplen, std::chrono::milliseconds{100});
  if (!reader) return reader.error();
  int stop = eventfd(0, EFD_CLOEXEC);
  if (stop < 0) return errnoError("flow log: eventfd", errno);
  return std::unique_ptr<FlowReader>(new FlowReader(std::move(*reader), collector, stop));
}

FlowReader::FlowReader(std::unique_ptr<nft::NflogReader> reader, FlowCollector& collector, int stopFd)
    : reader_(std::move(reader)), collector_(collector), stopFd_(stopFd), thread_([this] { run(); }) {}

FlowReader::~FlowReader() {
  uint64_t one = 1;
  (void)!write(stopFd_, &one, sizeof one);
  thread_.join();
  close(stopFd_);
}

nft::LogLosses FlowReader::losses() const {
  std::lock_guard lock(mu_);
  return losses_;
}

void FlowReader::run() {
  pollfd fds[2] = {{reader_->fd(), POLLIN, 0}, {stopFd_, POLLIN, 0}};
  for (;;) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) {
      logError("flow log: poll failed; no more records", "event=flow-log-failed");
      return;
    }
    if (fds[1].revents) return;
    if (!fds[0].revents) continue;
    auto now = std::chrono::system_clock::now();
    auto read = reader_->read([&](const nft::LoggedPacket& p) { collector_.add(p, now); });
    if (!read) {
      logError(read.error().message, "event=flow-log-failed");
      return;
    }
    packets_ += *read;
    std::lock_guard lock(mu_);
    losses_ = reader_->losses();
  }
}

}  // namespace nftpol::controller
