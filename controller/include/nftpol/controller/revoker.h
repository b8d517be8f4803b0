#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

#include "nftpol/controller/metrics.h"
#include "nftpol/nft/conntrack.h"
#include "nftpol/nft/ruleset.h"

namespace nftpol::controller {

// Marks the conntrack entries of established flows that a newly committed table denies (filter-forward then
// resets or drops their packets), and unmarks those it admits again, on a thread of its own: a conntrack dump
// walks the host-wide hash table (about 10 ms per family even when this namespace tracks nothing), and the
// next change must not wait for it. Tables submitted while a pass runs are coalesced: the next pass judges
// against the latest one, which is what the kernel then holds.
class Revoker {
 public:
  explicit Revoker(Metrics& metrics);
  ~Revoker();  // finishes the submitted passes, so `--once` still revokes before it exits
  Revoker(const Revoker&) = delete;
  Revoker& operator=(const Revoker&) = delete;

  void submit(nft::Table committed);

 private:
  void run();
  Metrics& metrics_;
  nft::Conntrack conntrack_;  // the pass's thread's alone
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<nft::Table> next_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace nftpol::controller
