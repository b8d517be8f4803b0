#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>

#include "nftpol/controller/flow_log.h"
#include "nftpol/nft/nflog.h"

namespace nftpol::controller {

// Reads the flow log's nfnetlink_log group on a thread of its own, so that a flood of logged packets never
// delays a commit and a long commit never overflows the socket, and hands each packet to the collector.
class FlowReader {
 public:
  static Result<std::unique_ptr<FlowReader>> start(uint16_t group, uint16_t snaplen,
                                                   FlowCollector& collector);
  ~FlowReader();  // stops and joins the thread
  FlowReader(const FlowReader&) = delete;
  FlowReader& operator=(const FlowReader&) = delete;

  nft::LogLosses losses() const;
  uint64_t packets() const { return packets_.load(); }

 private:
  FlowReader(std::unique_ptr<nft::NflogReader> reader, FlowCollector& collector, int stopFd);
  void run();
  std::unique_ptr<nft::NflogReader> reader_;
  FlowCollector& collector_;
  int stopFd_;
  mutable std::mutex mu_;
  nft::LogLosses losses_;
  std::atomic<uint64_t> packets_{0};
  std::thread thread_;
};

}  // namespace nftpol::controller
