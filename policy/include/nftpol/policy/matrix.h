#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nftpol/policy/compiled.h"

namespace nftpol::policy {

// A square bit matrix, rows of 64-bit words. 10k x 10k is 12.5 MB.
class BitMatrix {
 public:
  BitMatrix() = default;
  explicit BitMatrix(size_t n) : n_(n), words_((n + 63) / 64), bits_(n_ * words_, 0) {}

  size_t size() const { return n_; }
  size_t wordsPerRow() const { return words_; }
  bool get(size_t row, size_t col) const { return (bits_[row * words_ + col / 64] >> (col % 64)) & 1; }
  void set(size_t row, size_t col, bool v = true) {
    uint64_t mask = uint64_t{1} << (col % 64);
    auto& w = bits_[row * words_ + col / 64];
    w = v ? (w | mask) : (w & ~mask);
  }
  uint64_t* row(size_t r) { return bits_.data() + r * words_; }
  const uint64_t* row(size_t r) const { return bits_.data() + r * words_; }
  BitMatrix transposed() const;
  bool operator==(const BitMatrix&) const = default;

 private:
  size_t n_ = 0;
  size_t words_ = 0;
  std::vector<uint64_t> bits_;
};

// Reachability of every pod pair for one destination port and protocol: cell (i, j) is true when pod i can
// open a connection to pod j (ids are Compiled pod ids). Agrees with canReach on every pair; computed with
// bitsets so that 10k pods take well under a second.
BitMatrix reachability(const Compiled& compiled, Protocol protocol, uint16_t port);

// What a change does to reachability (--what-if): the pod pairs present before and after whose cell flips,
// and the pods that come or go, each in namespace/name order.
struct ReachabilityDiff {
  struct Flip {
    std::string from, to;
    bool allowedAfter;  // true: newly allowed; false: newly denied
  };
  std::vector<Flip> flips;
  std::vector<std::string> addedPods, removedPods;
};
ReachabilityDiff reachabilityDiff(const Compiled& before, const Compiled& after, Protocol protocol,
                                  uint16_t port);

}  // namespace nftpol::policy
