#pragma once

#include <cerrno>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "nftpol/nft/kernel_view.h"
#include "nftpol/result.h"

namespace nftpol::nft {

struct Applied {
  size_t messages =
      0;  // netlink messages in the transaction; 0 when the kernel already held the desired table
};

// One interface, a real and a fake (knftables' Interface): the controller and most tests do not know which.
class Backend {
 public:
  virtual ~Backend() = default;
  // Makes the kernel's table equal to `desired` in one transaction: all of it or, on error, none of it.
  virtual Result<Applied> apply(const Table& desired) = 0;
  // The same, told which of the table's sets, maps and chains (by name) may differ from the table given to
  // the previous apply: the others are equal to it, so a backend need not compare them again. A promise of
  // the caller's (the fake kernel checks it); without one, everything is compared.
  virtual Result<Applied> applyChanged(const Table& desired, const std::set<std::string>& changed) {
    (void)changed;
    return apply(desired);
  }
  // Removes the table (nothing to do when it is absent).
  virtual Result<Applied> remove(const std::string& table) = 0;
  // What the kernel holds now.
  virtual Result<KernelView> read(const std::string& table) = 0;
  // Drops anything remembered about the kernel, so that the next apply reads it afresh (periodic resync).
  virtual void forget() {}
  // The packets a named counter of `table` has counted.
  virtual Result<uint64_t> counterPackets(const std::string& table, const std::string& name) {
    return Error{"no counter " + name + " in table " + table, ENOENT};
  }
};

// The kernel in memory, for rootless tests of whatever drives a backend. It carries out the plan step by
// step as the kernel does a transaction, and refuses what the kernel refuses, all or nothing: a set, chain
// or element step on what does not exist, a rule or map element naming a set or chain that does not exist
// (ENOENT), removing a set or chain that something still refers to (EBUSY), adding a set or base chain
// over one of another shape (EEXIST). It counts the messages the real backend would send, and fails on
// request.
class FakeBackend : public Backend {
 public:
  Result<Applied> apply(const Table& desired) override;
  Result<Applied> applyChanged(const Table& desired, const std::set<std::string>& changed) override;
  Result<Applied> remove(const std::string& table) override;
  Result<KernelView> read(const std::string&) override { return view_; }
  void forget() override { ++forgotten_; }

  KernelView& view() { return view_; }  // tests tamper with it
  // The next `times` calls of apply() fail with `error` and change nothing.
  void failNext(Error error, int times = 1) { failures_.push_back({std::move(error), times}); }
  size_t applied() const { return applied_; }  // transactions committed (a plan with no step is none)
  size_t refused() const { return refused_; }  // apply() calls that returned an error
  size_t forgotten() const { return forgotten_; }

 private:
  struct Failure {
    Error error;
    int times;
  };
  std::vector<Failure> failures_;
  KernelView view_;
  std::optional<KernelView> previous_;  // the view of the table given to the previous apply
  // apply() with the desired table's view made once.
  Result<Applied> applyView(const Table& desired, KernelView view);
  size_t applied_ = 0, refused_ = 0, forgotten_ = 0;
};

// The fake's transaction: the plan's steps carried out on `current` (`want` gives the shapes and rules the
// steps add), or the kernel's refusal of the first step it would refuse.
Result<KernelView> transact(KernelView current, const Plan& plan, const KernelView& want);

// libnftnl/libmnl over a NETLINK_NETFILTER socket, in the caller's network namespace.
class NetlinkBackend : public Backend {
 public:
  static Result<std::unique_ptr<NetlinkBackend>> open();
  ~NetlinkBackend() override;
  Result<Applied> apply(const Table& desired) override;
  Result<Applied> applyChanged(const Table& desired, const std::set<std::string>& changed) override;
  Result<Applied> remove(const std::string& table) override;
  Result<KernelView> read(const std::string& table) override;
  void forget() override { committed_.reset(); }
  // Adds what `shape` holds without removing anything else of its table: the table, its sets and chains are
  // made when missing, each of its chains gets exactly its rules, and its set elements are added. One
  // transaction, so writers that each know only their own part (one CNI call per pod) never see or leave a
  // half-made table, and each chain ends with one copy of its rules however many of them raced.
  Result<Applied> merge(const Table& shape);
  // The rules of `table` as the kernel holds them now, chain by chain in order, with their handles: what a
  // trace event's handle names.
  struct HeldRule {
    std::string chain;
    size_t index = 0;  // in its chain
    uint64_t handle = 0;
    std::string comment;
  };
  Result<std::vector<HeldRule>> heldRules(const std::string& table);
  // Adds `keys` to a set of `table` whose elements time out (a dynamic set), each for `timeoutMs`.
  std::optional<Error> addTimedElements(const std::string& table, const Set& set, uint64_t timeoutMs);
  // ENOENT when there is no such counter.
  Result<uint64_t> counterPackets(const std::string& table, const std::string& name) override;

  struct Socket;

 private:
  NetlinkBackend() = default;
  Result<Applied> applyOnce(const Table& desired, const std::set<std::string>* changed);
  void recover();
  Result<uint32_t> generation();  // the ruleset generation, which every commit by anyone increments
  std::unique_ptr<Socket> socket_;
  // What the kernel held after our last commit, and the generation it had then. While the generation is
  // unchanged nobody has committed anything, so the view is still exact and no dump is needed.
  std::optional<std::pair<uint32_t, KernelView>> committed_;
  SignatureCache signatures_;
  bool cacheHoldsPrevious_ = false;  // signatures_ was made from the table given to the previous apply
};

}  // namespace nftpol::nft
